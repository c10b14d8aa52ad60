"""The ``mlpjax`` command line: :func:`main` parses the flags and calls the library.

Each command is a module of this package with the same small protocol: ``NAME`` (the command), ``HELP`` (one
line for ``mlpjax --help``), ``DESCRIPTION`` (the paragraph of ``mlpjax NAME --help``), ``add_arguments(parser)``
and ``run(args) -> int`` (the exit status). :data:`COMMANDS` lists them: a new command is a new module and a line
there; only the chosen command's ``add_arguments`` runs (:func:`build_parser`), so ``mlpjax --help`` imports no
JAX. Shared flags and parsers are in :mod:`mlpjax.cli.flags`. Bad input (a UserInputError) is one line and exit
status 2; Ctrl-C one line and 130 (:mod:`mlpjax.cli.interrupt`). The commands of :data:`PLUGIN_COMMANDS` load the
plugins (:mod:`mlpjax.plugins`: the installed ones and ``--plugin MODULE``) before their parser is built.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import NoReturn

from mlpjax import cache
from mlpjax.cli import (
    backprop,
    basics,
    bench,
    draw,
    evaluate,
    experiment,
    export,
    import_keras,
    predict,
    summary,
    sweep,
    train,
)
from mlpjax.cli.flags import flag, one_line
from mlpjax.errors import UserInputError

COMMANDS = (train, sweep, evaluate, summary, predict, export, import_keras, backprop, basics, draw, bench, experiment)
NAMES = frozenset(command.NAME for command in COMMANDS)
# Commands that start no child process: Ctrl-C ends them at once (mlpjax.cli.interrupt); the others (experiment,
# bench) get a KeyboardInterrupt, so that their children are interrupted with them.
EXIT_AT_ONCE = ("train", "sweep", "evaluate", "predict", "backprop")
# Commands that build or load a model: they load the installed plugins and take --plugin MODULE (docs/plugins.md)
PLUGIN_COMMANDS = ("train", "sweep", "evaluate", "summary", "predict", "export", "draw")
PLUGIN_HELP = (
    "import MODULE (a module name on sys.path, or a FILE.py path) first, so that the activations, optimizers, "
    "losses, metrics and datasets it registers can be named; repeatable (docs/plugins.md)"
)
DESCRIPTION = (
    "Train the Keras tutorial's MNIST MLP (Dense 512 relu, dropout 0.2, Dense 10 softmax, Adam) in JAX, "
    "save and resume runs, evaluate and use the models, sweep settings, and measure the tutorial's "
    "claims. Run 'mlpjax COMMAND --help' for a command's flags."
)


class VersionAction(argparse.Action):
    """``--version``: print :func:`mlpjax.versions.report` (what a bug report needs) and exit 0."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from mlpjax import versions

        print(versions.report())
        parser.exit()


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``mlpjax train: error: ...`` and exit status 2, as every
    other error of the command line: argparse's own printed its 7-13-line usage block first. ``--help`` still
    prints the usage. Its subparsers are of this class too (argparse makes them of the parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}; {self.prog} --help lists what it takes\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command of :data:`COMMANDS`; ``args.func`` is the chosen command's ``run``.

    ``only``: the one command whose flags are added (its ``add_arguments`` imports the registries, and so JAX);
    the others get their name and help line alone, which is all ``mlpjax --help`` shows. ``""``: none; the
    default None: all.
    """
    parser = OneLineParser(prog="mlpjax", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action=VersionAction,
        help="print the versions of mlpjax, its libraries and Python, and the devices, then exit",
    )
    parser.add_argument("--no-cache", action="store_true", help=cache.NO_CACHE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        if only is None or only == command.NAME:
            command.add_arguments(p)
        p.add_argument("--no-cache", action="store_true", default=argparse.SUPPRESS, help=cache.NO_CACHE_HELP)
        if command.NAME in PLUGIN_COMMANDS:
            p.add_argument("--plugin", action="append", default=[], metavar="MODULE", help=PLUGIN_HELP)
        p.set_defaults(func=command.run)
    return parser


def _quiet_unraisable(hook):
    """``sys.unraisablehook`` without Orbax's leftovers of a failed save: its worker threads finish after the
    event loop they report to is closed ("Event loop is closed")."""
    if getattr(hook, "mlpjax_quiet", False):  # installed already (main called again in one process)
        return hook

    def unraisable(info):
        if isinstance(info.exc_value, RuntimeError) and str(info.exc_value) == "Event loop is closed":
            return
        hook(info)

    unraisable.mlpjax_quiet = True
    return unraisable


def _refuse_unknown(command: str, unknown: list[str]) -> None:
    """Arguments that ``command`` does not take: one line that names the command (argparse's own names only
    ``mlpjax``); a positional value beginning with ``-`` is taken for a flag unless it follows ``--``."""
    if unknown:
        dash = " (a value that begins with '-' goes after '--')" if any(u.startswith("-") for u in unknown) else ""
        raise UserInputError(
            f"unrecognized arguments: {' '.join(unknown)}; mlpjax {command} --help lists what it takes{dash}"
        )


def _refuse_nul(args: argparse.Namespace) -> None:
    """A NUL character can be in no file name nor any other value (a shell cannot even pass one): refuse it in
    one line, naming the flag, before a path reaches the operating system."""
    for name, value in vars(args).items():
        if any("\x00" in v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)):
            raise UserInputError(f"{flag(name)}: contains a NUL character, which no file name or value can hold")


def plugin_arguments(argv: list[str]) -> tuple[str | None, list[str]]:
    """The command of ``argv`` (its first word that is no flag) and, for one of :data:`PLUGIN_COMMANDS`, the
    ``--plugin`` values after it (``--plugin M`` or ``--plugin=M``, up to ``--``): read before the parser is
    built, so that what the plugins register is in its help and choices."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    command = next((w for w in words if not w.startswith("-")), None)
    if command not in PLUGIN_COMMANDS:
        return command, []
    modules, rest = [], iter(words[words.index(command) + 1 :])
    for word in rest:
        if word == "--plugin":
            modules += [m for m in [next(rest, None)] if m is not None]
        elif word.startswith("--plugin="):
            modules.append(word.partition("=")[2])
    return command, modules


def main(argv: list[str] | None = None) -> int:
    """Run the command of ``argv``: its exit status; bad input is one line and 2, Ctrl-C one line and 130.

    ``argv`` None: the process's own command line (``sys.argv``); then Ctrl-C ends the process at once for
    the commands of :data:`EXIT_AT_ONCE` (see :mod:`mlpjax.cli.interrupt`).
    """
    from mlpjax.cli import interrupt

    program = argv is None
    if program and sys.argv[1:2] and sys.argv[1] in EXIT_AT_ONCE:
        interrupt.exit_on_interrupt()
    command = "?"
    sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    try:
        named, modules = plugin_arguments(sys.argv[1:] if argv is None else list(argv))
        if named in PLUGIN_COMMANDS:
            from mlpjax import plugins

            command = named
            plugins.load_plugins(*modules)  # the installed ones, then --plugin's, before the flags are built
        chosen = named if named in NAMES else ""  # --help, --version or a misspelt command: no flags built
        args, unknown = build_parser(chosen).parse_known_args(argv)
        command = args.command
        _refuse_unknown(command, unknown)
        _refuse_nul(args)
        if getattr(args, "plugin", None):  # as read above (an abbreviated --plug too); each loads once
            from mlpjax import plugins

            plugins.load_plugins(*args.plugin, installed=False)
        if command != "bench":  # bench times compiling: JAX's own settings (by default, no cache)
            cache.configure(enabled=not args.no_cache)  # before anything compiles
        return args.func(args)
    except UserInputError as e:
        print(f"mlpjax {command}: error: {one_line(e.for_cli(flag))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout's reader left (`mlpjax predict DIR --csv BIG.csv | head`): stop quietly
        with contextlib.suppress(OSError, ValueError):  # the rest of what was printed goes nowhere, unsaid
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: what a shell reports of a tool a closed pipe stopped
    except KeyboardInterrupt:
        if program:  # now, before Orbax's threads or a C extension's leftovers can say more
            interrupt.exit_now()
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
