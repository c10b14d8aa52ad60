"""The ``mlpjax`` command line: parses flags and calls the library. Bad input: one line, exit status 2."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from mlpjax.errors import UserInputError


def _checked(cast, accept, expected: str):
    """An argparse type: ``cast(text)``, refused with "expected ..." unless ``accept(value)``. Only for flags
    that no library object checks; the others are checked once, by the object they configure."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
integer = _checked(int, lambda v: True, "an integer")
number = _checked(float, lambda v: True, "a number")


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (a newline or a carriage return in a file name, say)
    written as its escape, so that an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


POSITIONALS = {"directory": "DIR", "name": "NAME"}  # arguments given without a flag, by their metavar


def flag(field: str) -> str:
    """The command-line flag of a library field: ``batch_size`` -> ``--batch-size`` (a positional: its metavar)."""
    if field in POSITIONALS:
        return POSITIONALS[field]
    return "--" + field.replace("_", "-")


def _choices(registry, default: str) -> str:
    return ", ".join(f"{name}{' (default)' if name == default else ''}" for name in registry)


def _default_epochs() -> str:
    """Each dataset's default epochs, from the registry: "mnist 2, ..., quadrants 300"."""
    from mlpjax.data import DATASETS

    return ", ".join(f"{name} {spec.default_epochs}" for name, spec in DATASETS.items())


def add_data_flags(p: argparse.ArgumentParser, default_help: str = "mnist") -> None:
    from mlpjax.data import DATA_DIR_ENV, DATASETS

    p.add_argument("--dataset", metavar="NAME", help="; ".join(f"{name}: {spec.about}" for name, spec in
                                                             DATASETS.items()) + f" (default: {default_help})")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"folder with the four MNIST-format IDX files (default: ${DATA_DIR_ENV}, else tfds)")


def add_saved_model_flags(p: argparse.ArgumentParser) -> None:
    """DIR of a saved run, the dataset to test it on, and --best."""
    p.add_argument("directory", metavar="DIR", help="a run directory from mlpjax train --output DIR")
    add_data_flags(p, default_help="the dataset the model was trained on")
    p.add_argument("--best", action="store_true", help="the best epoch (--save-best) instead of the last")


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The TrainConfig flags, with help from the registries. Their parser defaults are None, so that ``--resume``
    can tell a given flag from an omitted one; the defaults and the checks live in the library's configs."""
    from mlpjax.core import losses
    from mlpjax.core import model
    from mlpjax.core import optimizers

    add_data_flags(p)
    p.add_argument("--epochs", type=integer, metavar="N", help=f"epochs in all (default: {_default_epochs()})")
    p.add_argument("--batch-size", type=integer, metavar="N", help="default: 128")
    p.add_argument("--hidden", type=integer, nargs="+", metavar="N", help="hidden layer sizes (default: 512)")
    p.add_argument("--activation", help=_choices(model.ACTIVATIONS, "relu"))
    p.add_argument("--dropout", type=number, metavar="RATE", help="in [0, 1) (default: 0.2)")
    p.add_argument("--optimizer", help=_choices(optimizers.OPTIMIZERS, "adam"))
    p.add_argument("--lr", type=number, metavar="X", help="learning rate (default: Keras' for the optimizer: " +
                   ", ".join(f"{k} {v[0]:g}" for k, v in optimizers.OPTIMIZERS.items()) + ")")
    p.add_argument("--loss", help=_choices(losses.LOSSES, "categorical_crossentropy"))
    p.add_argument("--seed", type=integer, help="PRNG seed for init, dropout and shuffling (default: 0)")
    add_keras_flags(p)


def add_keras_flags(p: argparse.ArgumentParser) -> None:
    """Validation, early stopping, learning-rate schedule and plateau, metrics (TrainConfig fields; None: left out)."""
    from mlpjax.core import schedules
    from mlpjax.core.metrics import METRICS

    p.add_argument("--validation-split", type=number, metavar="F",
                   help="hold out the last F of the training rows (before shuffling, as Keras) for val_*; the test "
                        "set is then evaluated once, at the end (default: 0, val_* on the test set)")
    p.add_argument("--early-stopping", type=integer, metavar="PATIENCE",
                   help="stop when val_loss has not improved for PATIENCE epochs and restore the best weights")
    p.add_argument("--lr-schedule", metavar="NAME", help="learning rate by step over the planned epochs: " + "; ".join(
        f"{name}: {spec.about}{' (default)' if name == 'constant' else ''}".replace("%", "%%")
        for name, spec in schedules.SCHEDULES.items()))
    p.add_argument("--reduce-lr-on-plateau", action="store_const", const=True,
                   help="multiply the learning rate by --plateau-factor when val_loss has not improved for "
                        "--plateau-patience epochs (Keras' ReduceLROnPlateau)")
    p.add_argument("--plateau-factor", type=number, metavar="X", help="in (0, 1) (default: 0.1)")
    p.add_argument("--plateau-patience", type=integer, metavar="N", help="epochs (default: 10)")
    p.add_argument("--metrics", metavar="NAMES", help="comma-separated, computed on the validation data each epoch "
                   "and kept in the history as val_NAME: " + ", ".join(METRICS) + " (f1_score: val_f1_score_<class>; "
                   "Keras' aliases such as acc, mean_squared_error are accepted) (default: accuracy)")


def given_train_flags(args: argparse.Namespace) -> dict:
    """The flat TrainConfig fields (one flag each) that were given on the command line (flags left out are None)."""
    from mlpjax.core.config import TrainConfig

    given = {name: getattr(args, name) for name in TrainConfig.flat_fields() if getattr(args, name, None) is not None}
    if "hidden" in given:
        given["hidden"] = tuple(given["hidden"])
    if "metrics" in given:
        from mlpjax.core.metrics import check_names

        given["metrics"] = list(check_names(given["metrics"]))
    return given


def train_config_from_args(args: argparse.Namespace):
    from mlpjax.core.config import TrainConfig

    return TrainConfig.from_dict(given_train_flags(args))


def refuse_output_beside_resume(args: argparse.Namespace) -> None:
    """``--resume DIR`` writes into DIR: an ``--output`` naming another folder is a contradiction."""
    if args.output and Path(args.output).resolve() != Path(args.resume).resolve():
        raise UserInputError(f"--resume {args.resume} keeps writing into {args.resume}; drop --output {args.output}")


def checkpoint_run(args: argparse.Namespace):
    """The checkpointed run that ``train --output/--resume`` asks for, checked before anything is written."""
    from mlpjax.runs import run

    if not args.resume:
        return run.start(args.output, train_config_from_args(args), keep=args.keep, save_best=args.save_best)
    refuse_output_beside_resume(args)
    # flags left out come from the checkpoint; those given must agree with it (or be resumable changes)
    return run.resume(args.resume, given_train_flags(args), keep=args.keep, save_best=args.save_best)


def cmd_train(args: argparse.Namespace) -> int:
    from mlpjax.training import distributed

    if not (args.output or args.resume) and (args.keep or args.save_best):
        raise UserInputError("--keep and --save-best need --output DIR (or --resume DIR)")
    cluster = distributed.Cluster(args.coordinator, args.num_processes, args.process_id)
    mesh = distributed.setup(args.devices, cluster, args.model_parallel)
    say = print if distributed.is_primary() else (lambda *a, **k: None)  # only process 0 speaks
    run = checkpoint_run(args) if args.output or args.resume else None
    try:
        return train_and_report(args, run, mesh, say)
    finally:
        if run:
            run.close()  # a run that saved no epoch (refused or failed) leaves nothing it created


def train_and_report(args: argparse.Namespace, run, mesh, say) -> int:
    """``mlpjax train`` once its run directory, if any, is claimed (``run``): load, train, report."""
    from mlpjax import data
    from mlpjax.training import mesh as mesh_lib
    from mlpjax.core import model
    from mlpjax.draw import predict
    from mlpjax.core import summary
    from mlpjax.training import train
    from mlpjax.data import split

    config = run.config if run else train_config_from_args(args)
    mesh_lib.check_widths(mesh, config.model.hidden)
    dataset = data.load_dataset(config.dataset, config.data_dir)
    log = None if args.quiet else say
    say(f"{dataset.name}: {len(dataset.y_train)} train, {len(dataset.y_test)} test, "
        f"{dataset.input_dim} features, {dataset.num_classes} classes; {config.epochs} epochs"
        + (f"; {mesh_lib.describe(mesh)}" if mesh is not None else ""))
    if config.validation == "test":
        say(f"note: {split.TEST_NOTE}")
    else:
        n_val = len(dataset.y_train) - len(split.split(dataset, config.validation_split)[0].y_train)
        say(f"validation: the last {n_val} training examples (--validation-split {config.validation_split:g}); "
            "the test set is evaluated once, at the end")
    if not args.quiet:
        say(summary.summary(config.model_config(dataset.input_dim, dataset.num_classes)))
    if run and run.checkpoint:
        say(f"resuming {run.directory} from epoch {run.checkpoint.epoch}")
    if run:
        result = run.fit(dataset, quiet=args.quiet, log=log, mesh=mesh)
    else:
        result = train.fit(config, dataset, quiet=args.quiet, log=log, mesh=mesh)
    say(f"test loss {result.test_metrics['loss']:.4f}, test accuracy {result.test_metrics['accuracy']:.4f}")
    if len(dataset.y_test) > 9:
        sample = predict.predict_one(model.Classifier(result.state.params, result.state.model_config),
                                     *dataset.test_example(9))
        say(f"test sample 9: {sample.describe()}")
    if run:
        say(f"checkpoints in {run.directory / 'checkpoints'}" + (f", best in {run.directory / 'best'}"
            if run.save_best or config.early_stopping is not None else "")
            + f"; wrote {run.directory / 'metrics.json'}, history.csv, tensorboard/ and learning_curves.png")
    if result.kept_epoch is not None and result.kept_epoch != len(result.history["loss"]):
        say(f"kept the weights of epoch {result.kept_epoch} (the best val_loss)"
            + (f"; they are in {run.directory / 'best'} (commands take --best)" if run else ""))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from mlpjax import files
    from mlpjax.runs import run

    if args.confusion is not None:
        with flag_error("--confusion"):
            files.check_new_file(args.confusion)  # before evaluating; written below, never replacing a file
    report = run.evaluate(args.directory, dataset=args.dataset, data_dir=args.data_dir, best=args.best)
    if args.confusion is not None:
        from mlpjax import plots

        title = f"{report['dataset']} test, epoch {report['epoch']}"
        with flag_error("--confusion"):
            files.write_new(args.confusion, lambda tmp: plots.confusion_matrix(
                np.asarray(report["confusion"]), tmp, class_names=report["class_names"], title=title))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    m = report["test_metrics"]
    print(f"{report['checkpoint']} (epoch {report['epoch']}) on {report['dataset']} test: loss {m['loss']:.4f}, "
          f"accuracy {m['accuracy']:.4f}, precision {m['precision']:.4f}, recall {m['recall']:.4f} (Keras'); "
          f"precision_macro {m['precision_macro']:.4f}, recall_macro {m['recall_macro']:.4f}, "
          f"f1_macro {m['f1_macro']:.4f}")
    if args.confusion is not None:
        print(per_class_table(report))
        print(f"wrote {args.confusion}")
    return 0


def per_class_table(report: dict) -> str:
    """Per-class precision, recall and support of an evaluation report, one line per class."""
    names, pc = report["class_names"], report["per_class"]
    width = max(len("class"), *(len(n) for n in names))
    lines = [f"{'class':<{width}}  precision  recall  support"]
    for name, p, r, n in zip(names, pc["precision"], pc["recall"], pc["support"]):
        lines.append(f"{name:<{width}}  {p:9.4f}  {r:6.4f}  {int(n):7d}")
    return "\n".join(lines)


def cmd_summary(args: argparse.Namespace) -> int:
    from mlpjax.core import summary

    if args.directory:
        given = {k for k in ("hidden", "activation", "dropout", "dataset") if getattr(args, k) is not None}
        if given:
            raise UserInputError(f"give a run DIR ({args.directory}) or architecture flags "
                                 f"({', '.join(flag(k) for k in sorted(given))}), not both")
        from mlpjax.runs import checkpoint

        model_config = checkpoint.restore(args.directory).model_config
    else:
        model_config = summary.model_config_for(train_config_from_args(args))
    print(summary.summary(model_config))
    return 0


@contextlib.contextmanager
def flag_error(flag: str):
    """Within it, a UserInputError gets ``flag`` in front: "--out x.png: already exists; ..."."""
    try:
        yield
    except UserInputError as e:
        raise UserInputError(f"{flag} {e}") from None


def cmd_predict(args: argparse.Namespace) -> int:
    from mlpjax.runs import checkpoint
    from mlpjax import files
    from mlpjax.draw import predict
    from mlpjax.runs import run

    ckpt = checkpoint.restore(args.directory, best=args.best)
    if args.image is not None:
        with flag_error("--image"):
            x = predict.load_image(args.image, ckpt.model_config.input_dim)
        print(f"{args.image}: {predict.predict_one(ckpt.classifier, x).describe()}")
        return 0
    ds = run.dataset_for(ckpt, args.dataset, args.data_dir)
    if not 0 <= args.index < len(ds.y_test):
        raise UserInputError(f"--index {args.index}: the {ds.name} test set has samples 0 to {len(ds.y_test) - 1}")
    out = f"predict_{args.index}.png" if args.out is None else args.out
    if ds.image_shape is not None:
        with flag_error("--out"):
            files.check_new_file(out)  # before predicting; save_png checks again as it writes
    image, label = ds.test_example(args.index)
    result = predict.predict_one(ckpt.classifier, image, label)
    print(f"{ds.name} test sample {args.index}: {result.describe()}")
    if ds.image_shape is not None:
        with flag_error("--out"):
            out = predict.save_png(image.reshape(ds.image_shape), result.describe(sep="\n"), out)
        print(f"wrote {out}")
    return 0


def cmd_backprop(args: argparse.Namespace) -> int:
    import json

    from mlpjax.teaching import backprop
    from mlpjax.teaching import gradcheck

    step = backprop.worked_step(backprop.ARTICLE)
    reference = gradcheck.article_jax_grads(backprop.ARTICLE)
    run = backprop.worked_train(backprop.ARTICLE, args.iterations) if args.iterations else None
    if args.json:
        print(json.dumps(backprop.worked_record(step, reference, run), indent=2))
        return 0
    print(backprop.walkthrough(step, reference))
    if run is not None:
        print()
        print(backprop.training_lines(run))
    return 0


def cmd_basics(args: argparse.Namespace) -> int:
    import json

    from mlpjax.teaching import basics

    record = basics.compute(args.data_dir)
    print(json.dumps(record, indent=2) if args.json else basics.render(record))
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from mlpjax.draw import recognize, window

    if args.directory and args.train_quick:
        raise UserInputError(f"give a model DIR ({args.directory}) or --train-quick, not both")
    if not args.directory and not args.train_quick:
        raise UserInputError("no model given: train one with `mlpjax train --output DIR` and run `mlpjax draw DIR`, "
                             "or run `mlpjax draw --train-quick` to train a 1-epoch MNIST model first")
    if args.directory and args.data_dir is not None:
        raise UserInputError(f"--data-dir is for --train-quick; the model in {args.directory} needs no data")
    if args.train_quick and args.best:
        raise UserInputError("--best picks the best epoch of a model DIR; --train-quick trains a model of one epoch")
    # every flag is checked before the display is looked at, and the display before the slow training
    if args.directory:
        from mlpjax.runs.checkpoint import load_model

        classifier = load_model(args.directory, best=args.best)
        recognize.check_model(classifier)
        window.check_display(probe=True)
    else:
        from mlpjax import data

        dataset = data.load_dataset("mnist", args.data_dir)
        window.check_display(probe=True)
        classifier = recognize.train_quick_model(dataset=dataset)
    win = window.DrawWindow(classifier, on_recognise=lambda r: print(f"recognised {r.text}", flush=True))
    print("window open: draw a digit; Recognise (Enter), Clear (Escape)", flush=True)
    win.run()
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from mlpjax import experiments
    from mlpjax import files
    from mlpjax.errors import check_name

    found = experiments.discover()
    check_name("experiment", args.name, (*found, "all"))
    names = list(found) if args.name == "all" else [args.name]
    experiments.check_seed(names, args.seed)
    with flag_error("--out"):
        files.make_folder(args.out)
    for name in names:
        experiments.run_experiment(name, args.out, quick=args.quick, data_dir=args.data_dir, seed=args.seed)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from mlpjax import bench

    config = bench.BenchConfig(quick=args.quick, against=tuple(a for a in args.against.split(",") if a),
                               batch_size=args.batch_size, hidden=tuple(args.hidden), data_dir=args.data_dir,
                               rounds=args.rounds, sweep=not args.no_sweep, memory=not args.no_memory,
                               models=not args.no_models)
    report = bench.run(config, log=(lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr)))
    print(json.dumps(report, indent=2) if args.json else bench.format_report(report))
    return 0


class VersionAction(argparse.Action):
    """``--version``: print :func:`mlpjax.versions.report` (what a bug report needs) and exit 0."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from mlpjax import versions

        print(versions.report())
        parser.exit()


def _listed(cast, expected: str):
    """An argparse type for comma-separated values, each ``cast`` (its ValueError: "expected ...")."""
    def parse(text: str):
        try:
            return [cast(part.strip()) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, comma-separated, got {text!r}") from None

    return parse


def _widths(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split("x"))


def add_sweep_flags(p: argparse.ArgumentParser) -> None:
    """The train flags, those of :data:`mlpjax.sweep.train.LISTED` as comma-separated lists (parser default None)."""
    from mlpjax.core import losses
    from mlpjax.core import model
    from mlpjax.core import optimizers

    add_data_flags(p)
    p.add_argument("--seed", type=_listed(int, "integers"), metavar="S,...", help="PRNG seeds (default: 0)")
    p.add_argument("--lr", type=_listed(float, "numbers"), metavar="X,...",
                   help="learning rates (default: Keras' for the optimizer)")
    p.add_argument("--dropout", type=_listed(float, "numbers"), metavar="RATE,...", help="in [0, 1) (default: 0.2)")
    p.add_argument("--hidden", type=_listed(_widths, "layer widths like 512 or 256x128"), metavar="H,...",
                   help="architectures, layers joined by x: 512,256x128 (default: 512)")
    p.add_argument("--activation", type=_listed(str, "names"), metavar="NAME,...",
                   help=_choices(model.ACTIVATIONS, "relu"))
    p.add_argument("--optimizer", type=_listed(str, "names"), metavar="NAME,...",
                   help=_choices(optimizers.OPTIMIZERS, "adam"))
    p.add_argument("--loss", type=_listed(str, "names"), metavar="NAME,...",
                   help=_choices(losses.LOSSES, "categorical_crossentropy"))
    p.add_argument("--batch-size", type=_listed(int, "integers"), metavar="N,...", help="default: 128")
    p.add_argument("--epochs", type=_listed(int, "integers"), metavar="N,...",
                   help=f"epochs (default: {_default_epochs()})")


def _sweep_bar(plan, found: list[list[int]]):
    """One progress bar for the whole sweep, a step per epoch line: a group's epoch when vmapped, a model's when
    one after another; the lines are written above it."""
    from tqdm.auto import tqdm

    configs = plan.configs
    total = (sum(configs[g[0]].epochs for g in found) if plan.strategy == "vmap"
             else sum(c.epochs for c in configs))
    return tqdm(total=total, desc="sweep", unit="epoch", leave=False)


def cmd_sweep(args: argparse.Namespace) -> int:
    from mlpjax import data, sweep
    from mlpjax.sweep import checkpoint as sweep_checkpoint
    from mlpjax.sweep import report as sweep_report

    if args.resume:
        refuse_output_beside_resume(args)
        plan = sweep_checkpoint.load_plan(args.resume)
        given = [n for n in sweep.LISTED + ("dataset", "data_dir") if getattr(args, n, None) is not None]
        if given:
            raise UserInputError(f"--resume continues the saved sweep; drop {', '.join(flag(n) for n in given)}")
        output = args.resume
    else:
        base = {k: getattr(args, k) for k in ("dataset", "data_dir") if getattr(args, k) is not None}
        lists = {k: getattr(args, k) for k in sweep.LISTED if getattr(args, k) is not None}
        plan = sweep_checkpoint.Plan(sweep.grid(base, lists), sweep.resolve_strategy(args.strategy))
        output = args.output
    mesh = None
    if args.devices is not None and plan.strategy != "vmap":
        raise UserInputError(f"--devices splits the models of a vmapped group; this sweep's strategy is "
                             f"{plan.strategy} (give --strategy vmap)")
    if args.devices is not None:
        from mlpjax.sweep import stack

        mesh = stack.model_mesh(args.devices)
    dataset = data.load_dataset(plan.configs[0].dataset, plan.configs[0].data_dir)
    sweep.check_sweep_memory(plan.configs, dataset, plan.strategy, mesh)  # before the folder is made
    hooks = sweep_checkpoint.SweepCheckpoints.open(output, plan, resume=bool(args.resume)) if output else None
    found = sweep.groups(plan.configs)
    print(f"{len(plan.configs)} models in {len(found)} group(s), strategy {plan.strategy}"
          + (f", model axis over {mesh.size} devices" if mesh is not None else ""))
    bar = None if args.quiet else _sweep_bar(plan, found)
    try:
        result = sweep.run_sweep(plan.configs, dataset, strategy=plan.strategy, mesh=mesh, hooks=hooks,
                                 log=None if bar is None else lambda line: (bar.write(line), bar.update(1)))
    finally:
        if bar is not None:
            bar.close()
        if hooks:
            hooks.close()
    print(sweep_report.summary_markdown(result), end="")
    if output:
        paths = sweep_report.write(output, result)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlpjax", description=__doc__)
    parser.add_argument("--version", action=VersionAction,
                        help="print the versions of mlpjax, its libraries and Python, and the devices, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train the MLP and report test accuracy")
    add_train_flags(p)
    p.add_argument("--output", metavar="DIR",
                   help="save a checkpoint every epoch into DIR/checkpoints and the history into DIR/metrics.json")
    p.add_argument("--keep", type=integer, metavar="N", help="checkpoints to keep, the most recent (default: 3)")
    p.add_argument("--save-best", action="store_true", help="also keep the epoch of lowest val_loss in DIR/best")
    p.add_argument("--resume", metavar="DIR",
                   help="continue DIR from its last complete epoch up to --epochs in all, with its saved settings")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--devices", type=integer, metavar="N",
                   help="data-parallel over N devices of each process (default: all of the default backend)")
    p.add_argument("--model-parallel", type=integer, default=1, metavar="M",
                   help="tensor-parallel: split each hidden layer's weights over M of those devices (M must divide "
                        "--devices and every --hidden width; default: 1)")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="several processes (jax.distributed): the address of process 0; 'auto' under "
                        "Slurm/Open MPI (default: $JAX_COORDINATOR_ADDRESS)")
    p.add_argument("--num-processes", type=integer, metavar="P", help="with --coordinator: processes in all")
    p.add_argument("--process-id", type=integer, metavar="I", help="with --coordinator: this process, 0 to P-1")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="train the product of lists of settings, as vmapped groups of models")
    add_sweep_flags(p)
    from mlpjax.sweep.train import STRATEGIES

    p.add_argument("--strategy", default="auto", choices=STRATEGIES,
                   help="vmap: each group as one vmapped program; sequential: one model at a time; auto: vmap "
                        "on an accelerator, sequential on a CPU (measured: docs/sweep.md) (default: auto)")
    p.add_argument("--output", metavar="DIR", help="results.json, summary.md, curves.png and checkpoints in DIR")
    p.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR from its last saved epochs")
    p.add_argument("--devices", type=positive_int, metavar="N",
                   help="with vmap: split the model axis over N devices (default: one device)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("evaluate", help="test loss, accuracy, precision, recall and F1 of a saved model")
    add_saved_model_flags(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--confusion", metavar="FILE.png",
                   help="draw the confusion matrix into FILE.png and print per-class precision and recall")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("summary", help="the model's layers, output shapes and parameters, as Keras' model.summary()")
    p.add_argument("directory", nargs="?", metavar="DIR", help="a run directory (else the architecture flags)")
    p.add_argument("--dataset", metavar="NAME", help="the input width and classes of this dataset (default: mnist)")
    p.add_argument("--hidden", type=integer, nargs="+", metavar="N", help="hidden layer sizes (default: 512)")
    p.add_argument("--activation", help="default: relu")
    p.add_argument("--dropout", type=number, metavar="RATE", help="in [0, 1) (default: 0.2)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("predict", help="predict a test sample (--index) or a digit image file (--image)")
    add_saved_model_flags(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=int, metavar="N", help="test sample N; draws it to a PNG (see --out)")
    what.add_argument("--image", metavar="FILE", help="an image of a digit, any size, either polarity")
    p.add_argument("--out", metavar="FILE.png", help="with --index: where to draw it (default: predict_N.png)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("backprop", help="the worked 2-2-2 backpropagation example, checked against jax.grad")
    p.add_argument("--iterations", type=positive_int, metavar="N", help="then repeat the update N times")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the walk-through")
    p.set_defaults(func=cmd_backprop)

    p = sub.add_parser("basics", help="the tutorial's small worked examples: activations, softmax, ..., the δ method")
    p.add_argument("--data-dir", metavar="DIR",
                   help="MNIST IDX files, to read the shapes from their headers (default: $MLPJAX_DATA_DIR)")
    p.add_argument("--json", action="store_true", help="print every number as one JSON object")
    p.set_defaults(func=cmd_basics)

    p = sub.add_parser("draw", help="a window to draw a digit with the mouse and have the model recognise it")
    p.add_argument("directory", nargs="?", metavar="DIR", help="a run directory from mlpjax train --output DIR")
    p.add_argument("--best", action="store_true", help="the best epoch (--save-best) instead of the last")
    p.add_argument("--train-quick", action="store_true",
                   help="no DIR: train 1 epoch of MNIST now (needs --data-dir or $MLPJAX_DATA_DIR)")
    p.add_argument("--data-dir", metavar="DIR", help="with --train-quick: the folder with the MNIST IDX files")
    p.set_defaults(func=cmd_draw)

    from mlpjax.experiments import DEFAULT_OUT, discover

    p = sub.add_parser("bench", help="training speed against the matmul ceiling, PyTorch and Keras")
    p.add_argument("--quick", action="store_true", help="small budgets (a smoke test)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--against", default="jax,torch,keras", metavar="NAMES",
                   help="comma-separated baselines, run when installed: jax (a minimal hand-written loop), torch, keras (default: all; '' for none)")
    p.add_argument("--batch-size", type=positive_int, default=128, metavar="N", help="default: 128")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[512], metavar="N", help="default: 512")
    p.add_argument("--data-dir", metavar="DIR", help="real MNIST (default: $MLPJAX_DATA_DIR, else random data)")
    p.add_argument("--rounds", type=positive_int, default=3, metavar="N", help="timed epochs per framework")
    p.add_argument("--no-sweep", action="store_true", help="skip the batch-size and width sweep")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument("--no-models", action="store_true",
                   help="skip models per second by K (K models as one vmapped program, and one by one)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("experiment", help="measure one of the tutorial's claims: tables and figures in DIR/NAME/")
    p.add_argument("name", metavar="NAME", help="; ".join(f"{name}: {question}" for name, question in
                                                          discover().items()) + "; or all of them in turn")
    p.add_argument("--quick", action="store_true", help="smoke-test budget: digits (or an MNIST slice), 2 epochs")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"default: {DEFAULT_OUT}")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the MNIST IDX files (default: $MLPJAX_DATA_DIR)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of every run (default: 0)")
    p.set_defaults(func=cmd_experiment)
    return parser


# Commands that start no child process: Ctrl-C ends them at once (mlpjax.cli.interrupt); the others (experiment,
# bench) get a KeyboardInterrupt, so that their children are interrupted with them.
EXIT_AT_ONCE = ("train", "evaluate", "predict", "backprop")


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
        raise UserInputError(f"unrecognized arguments: {' '.join(unknown)}; mlpjax {command} --help lists what it "
                             f"takes{dash}")


def _refuse_nul(args: argparse.Namespace) -> None:
    """A NUL character can be in no file name nor any other value (a shell cannot even pass one): refuse it in
    one line, naming the flag, before a path reaches the operating system."""
    for name, value in vars(args).items():
        if any("\x00" in v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)):
            raise UserInputError(f"{flag(name)}: contains a NUL character, which no file name or value can hold")


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
        args, unknown = build_parser().parse_known_args(argv)
        command = args.command
        _refuse_unknown(command, unknown)
        _refuse_nul(args)
        return args.func(args)
    except UserInputError as e:
        print(f"mlpjax {command}: error: {one_line(e.for_cli(flag))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if program:  # now, before Orbax's threads or a C extension's leftovers can say more
            interrupt.exit_now()
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
