"""Runs each item of issue 26 ("nothing lost at any moment, never a traceback anywhere") against two source trees
and prints the before/after table of docs/reliability.md: for each case the command, and for each tree its exit
status, the line it printed (the last line of stderr; a traceback's last line; with the number of lines where there
were more), its peak memory (the child's maxrss) and its time.

    python scripts/reliability_report.py --before /work/base --after . [--only 1,2,5] [--timeout 60]

Each case runs in a fresh scratch folder (``S`` in the table) as ``python -m mlpjax.cli ARGV`` with PYTHONPATH set to
the tree, under a 4 GiB address-space limit (so that the old code's runaway reads fail instead of eating the
machine) and a time limit (``--timeout``; a command still running then is killed and shown as such). Cases that
need a small tmpfs (root) or the real MNIST ($MLPJAX_DATA_DIR or ../shared/data/mnist) say so and are skipped
without them. What a case checks after the command (files kept, temporary files left) follows its line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AS_LIMIT = 4 << 30
MNIST = next(
    (
        p
        for p in (os.environ.get("MLPJAX_DATA_DIR"), str(REPO.parent / "shared" / "data" / "mnist"))
        if p and Path(p).is_dir()
    ),
    None,
)
DIGITS = ["--dataset", "digits", "--hidden", "16", "--quiet"]
WIDE = ["--dataset", "digits", "--hidden", "128", "--batch-size", "64", "--epochs", "3", "--quiet"]  # 360 KiB: 1 epoch


@dataclasses.dataclass
class Ctx:
    """One case's run against one tree: the tree, its scratch folder ``s`` and what to undo afterwards."""

    tree: Path
    s: Path
    cleanups: list[Callable[[], object]] = dataclasses.field(default_factory=list)

    def env(self, extra: dict[str, str | None] | None = None) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(self.tree), "MLPJAX_DATA_DIR": str(self.s / "no-data")}
        env["TFDS_DATA_DIR"] = str(self.s / "tfds")  # nothing prepared: tfds would download
        for name, value in (extra or {}).items():
            env.pop(name, None) if value is None else env.__setitem__(name, value)
        return env

    def mlpjax(self, *argv) -> None:
        """A setup command (not measured); one that fails stops the case."""
        proc = subprocess.run(
            [sys.executable, "-m", "mlpjax.cli", *map(str, argv)], cwd=self.s, env=self.env(), capture_output=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"setup `mlpjax {' '.join(map(str, argv))}` failed: {proc.stderr.decode()[-300:]}")

    def tmpfs(self, name: str, size: str) -> Path:
        """A tmpfs of ``size`` at ``s/name`` (root only), unmounted afterwards."""
        where = self.s / name
        where.mkdir()
        if (
            os.geteuid() != 0
            or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]).returncode
        ):
            raise RuntimeError("needs root to mount a tmpfs")
        self.cleanups.append(lambda: subprocess.run(["umount", "-l", str(where)]))
        return where


def fill(disk: Path) -> None:
    """Take every free block of the tmpfs ``disk``."""
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()


def leftovers(folder: Path) -> str:
    """The temporary files a kill or failed write left under ``folder``, in words."""
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "tmp" in p.name)
    return f"left {len(left)} temporary: {', '.join(left[:2])}" if left else "no temporary file left"


@dataclasses.dataclass
class Case:
    item: str  # "N: what the folder or the flags hold" (N: the item of issue 26)
    argv: list[str]  # {S}: the scratch folder; ["-c", CODE]: python itself
    setup: Callable[[Ctx], object] | None = None
    check: Callable[[Ctx], str] | None = None
    env: dict[str, str | None] = dataclasses.field(default_factory=dict)
    interrupt_when: str | None = None  # SIGINT once this path (under S) exists
    needs_mnist: bool = False


def train_run(ctx: Ctx, name: str = "run", epochs: int = 2, *more) -> Path:
    ctx.mlpjax("train", *DIGITS, "--epochs", epochs, *more, "--output", ctx.s / name)
    return ctx.s / name


def setup_best_gap(ctx: Ctx) -> None:
    whole = train_run(ctx, "whole", 2, "--validation-split", "0.2", "--early-stopping", "1", "--save-best")
    shutil.copytree(whole / "checkpoints" / "1", ctx.s / "D" / "checkpoints" / "1")
    (ctx.s / "D" / "best").mkdir()


def finished_sweep(ctx: Ctx, strategy: str = "sequential") -> Path:
    sw = ctx.s / "SW"
    ctx.mlpjax("sweep", *DIGITS, "--epochs", "1", "--seed", "0,1", "--strategy", strategy, "--output", sw)
    return sw


def setup_sweep_killed_in_first_save(ctx: Ctx) -> None:
    sw = finished_sweep(ctx)
    for name in ("results.json", "summary.md", "curves.png", "tensorboard", "runs/1"):
        path = sw / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (sw / "runs" / "1" / "checkpoints" / "1.orbax-checkpoint-tmp-1733580000" / "state").mkdir(parents=True)


def setup_kill_leftovers(ctx: Ctx) -> None:
    run = train_run(ctx, "D")
    (run / ".metrics.json.k1ll3d__.tmp").write_text("{")
    (run / ".learning_curves.png.k1ll3d__.tmp").write_bytes(b"\x89PNG")
    (run / "checkpoints" / "3.orbax-checkpoint-tmp-1733580000" / "state").mkdir(parents=True)


def setup_plan(tamper: Callable[[Path], object]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        plan = finished_sweep(ctx) / "sweep.json"
        plan.unlink()
        tamper(plan)

    return setup


def setup_user_files(ctx: Ctx) -> None:
    (ctx.s / "U").mkdir()
    (ctx.s / "U" / "history.csv").write_text("mine\n")
    (ctx.s / "U" / "learning_curves.png").write_text("mine\n")


def user_files_kept(ctx: Ctx) -> str:
    kept = all((ctx.s / "U" / n).read_text() == "mine\n" for n in ("history.csv", "learning_curves.png"))
    return "the user's files kept" if kept else "the user's history.csv and learning_curves.png REPLACED"


def setup_full_disk_run(ctx: Ctx) -> None:
    ctx.tmpfs("disk", "360k")


def setup_full_disk_png(ctx: Ctx) -> None:
    train_run(ctx)
    fill(ctx.tmpfs("disk", "2m"))


def disk_left(ctx: Ctx) -> str:
    return leftovers(ctx.s / "disk")


def setup_history_folder(ctx: Ctx) -> None:
    run = train_run(ctx)
    (run / "history.csv").unlink()
    (run / "history.csv").mkdir()


def setup_image(ctx: Ctx, mode: str = "L") -> None:
    import numpy as np
    from PIL import Image

    train_run(ctx)
    if mode == "F":
        pixels = np.full((8, 8), -3.4e38, np.float32)
        pixels[2:6, 3:5] = 3.4e38
        Image.fromarray(pixels, mode="F").save(ctx.s / "digit.tiff")
    else:
        pixels = np.zeros((8, 8), np.uint8)
        pixels[2:6, 3:5] = 255
        Image.fromarray(pixels).save(ctx.s / "digit.png")


def image_out_written(ctx: Ctx) -> str:
    return "F.png written" if (ctx.s / "F.png").exists() else "F.png NOT written"


def many(n: int) -> str:
    return ",".join(str(i) for i in range(n))


def lr_values(n: int) -> str:
    return ",".join(f"{0.001 + i * 1e-6:.6f}" for i in range(n))


CASES = [
    # 1. a kill at the wrong moment
    Case(
        "1: killed between epoch 1's checkpoint and its first best save (checkpoints/1, an empty best/)",
        ["train", "--resume", "{S}/D", "--quiet"],
        setup_best_gap,
    ),
    Case(
        "1: a sequential sweep killed in model 2's first save (runs/1 holds an Orbax temporary folder)",
        ["sweep", "--resume", "{S}/SW", "--quiet"],
        setup_sweep_killed_in_first_save,
        lambda c: leftovers(c.s / "SW"),
    ),
    Case(
        "1: a finished run holding what kills leave (.metrics.json.*.tmp, an Orbax temporary folder, ...)",
        ["train", "--resume", "{S}/D", "--epochs", "3", "--quiet"],
        setup_kill_leftovers,
        lambda c: leftovers(c.s / "D"),
    ),
    # 2. a full disk
    Case("2: a 360 KiB disk", ["train", *WIDE, "--output", "{S}/disk/run"], setup_full_disk_run, disk_left),
    Case(
        "2: a 360 KiB disk",
        ["sweep", *WIDE, "--seed", "0,1", "--strategy", "vmap", "--output", "{S}/disk/sw"],
        setup_full_disk_run,
        disk_left,
    ),
    Case("2: a full disk", ["evaluate", "{S}/run", "--confusion", "{S}/disk/cm.png"], setup_full_disk_png, disk_left),
    Case(
        "2: history.csv is a folder", ["train", "--resume", "{S}/run", "--epochs", "3", "--quiet"], setup_history_folder
    ),
    # 3. the user's files
    Case(
        "3: the folder holds the user's history.csv and learning_curves.png",
        ["train", *DIGITS, "--epochs", "1", "--output", "{S}/U"],
        setup_user_files,
        user_files_kept,
    ),
    # 4. files mlpjax reads itself
    Case(
        "4: sweep.json is a link to /dev/zero",
        ["sweep", "--resume", "{S}/SW", "--quiet"],
        setup_plan(lambda p: p.symlink_to("/dev/zero")),
    ),
    Case("4: sweep.json is a FIFO", ["sweep", "--resume", "{S}/SW", "--quiet"], setup_plan(os.mkfifo)),
    Case(
        "4: sweep.json's configs are [1]",
        ["sweep", "--resume", "{S}/SW", "--quiet"],
        setup_plan(
            lambda p: p.write_text(
                json.dumps({"format": "mlpjax-sweep", "version": 1, "strategy": "vmap", "configs": [1]})
            )
        ),
    ),
    # 5. a sweep's product
    Case(
        "5: 5,010,000 models",
        ["sweep", *DIGITS[:2], "--seed", many(5010), "--lr", lr_values(1000), "--output", "{S}/p"],
    ),
    # 6. sweep --output in a bad place
    Case(
        "6: --output under a file",
        ["sweep", *DIGITS, "--epochs", "1", "--output", "{S}/file/sw"],
        lambda c: (c.s / "file").write_text("mine"),
    ),
    # 7. no network
    Case(
        "7: no MNIST on disk, no network",
        ["train", "--dataset", "mnist", "--epochs", "1", "--quiet", "--output", "{S}/m"],
        env={"MLPJAX_DATA_DIR": None},
    ),
    Case(
        "7: $MLPJAX_DATA_DIR names an MNIST folder",
        ["train", "--dataset", "fashion_mnist", "--hidden", "8", "--epochs", "1", "--quiet", "--output", "{S}/f"],
        env={"MLPJAX_DATA_DIR": MNIST},
        needs_mnist=True,
    ),
    # 8. Ctrl-C (draw needs a display: here, a sweep in the middle of training)
    Case(
        "8: Ctrl-C once model 1's first epoch is saved",
        [
            "sweep",
            *DIGITS[:2],
            "--hidden",
            "1024",
            "--epochs",
            "100000",
            "--seed",
            "0,1",
            "--quiet",
            "--output",
            "{S}/c",
        ],
        interrupt_when="c/runs/0/checkpoints/1",
    ),
    # 9. flags that do nothing
    Case(
        "9: --out beside --image",
        ["predict", "{S}/run", "--image", "{S}/digit.png", "--out", "{S}/F.png"],
        setup_image,
        image_out_written,
    ),
    Case(
        "9: --strategy vmap resuming a sequential sweep",
        ["sweep", "--resume", "{S}/SW", "--strategy", "vmap", "--quiet"],
        finished_sweep,
    ),
    Case(
        "9: --plateau-factor without --reduce-lr-on-plateau",
        ["train", "--dataset", "quadrants", "--epochs", "1", "--plateau-factor", "0.5", "--quiet", "--output", "{S}/q"],
    ),
    # 10. extra lines around the one line
    Case(
        "10: a float TIFF of finite ±3.4e38",
        ["predict", "{S}/run", "--image", "{S}/digit.tiff"],
        lambda c: setup_image(c, "F"),
    ),
    Case(
        "10: --lr 1e308",
        ["train", "--dataset", "quadrants", "--epochs", "1", "--lr", "1e308", "--quiet", "--output", "{S}/q"],
    ),
    Case("10: a bad value: argparse's usage block", ["train", "--epochs", "x"]),
    # 11. the Python API
    Case(
        "11: TrainConfig(data_dir=b'x')",
        ["-c", "import mlpjax; print(repr(mlpjax.TrainConfig(data_dir=b'x').data_dir))"],
    ),
    Case("11: TrainConfig(metrics=None)", ["-c", "import mlpjax; mlpjax.TrainConfig(metrics=None)"]),
]


@dataclasses.dataclass
class Outcome:
    rc: int | str
    line: str
    peak_mib: float
    seconds: float


def measure(ctx: Ctx, case: Case, timeout: float) -> Outcome:
    """Run ``case`` in ``ctx``: its exit status, the line it printed, its peak memory and time."""
    argv = [a.replace("{S}", str(ctx.s)) for a in case.argv]
    argv = argv if argv[0] == "-c" else ["-m", "mlpjax.cli", *argv]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job ignores it, and so would the child

    out, err = ctx.s / ".stdout", ctx.s / ".stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [sys.executable, *argv], cwd=ctx.s, env=ctx.env(case.env), stdout=o, stderr=e, preexec_fn=limit
        )
    start, sent, status, usage = time.monotonic(), None, None, None
    while status is None:
        pid, wait_status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, usage = os.waitstatus_to_exitcode(wait_status), ru
            break
        now = time.monotonic()
        if sent is None and case.interrupt_when and (ctx.s / case.interrupt_when).exists():
            proc.send_signal(signal.SIGINT)
            sent = now
        if now - start > timeout or sent is not None and now - sent > 30:
            proc.kill()
            _, wait_status, usage = os.wait4(proc.pid, 0)
            status = f"killed after {now - start:.0f} s"
        time.sleep(0.02)
    proc.returncode = 0  # reaped above
    line = printed(err.read_text(errors="replace"), out.read_text(errors="replace"), ctx)
    if sent is not None:
        line += f" (ended {time.monotonic() - sent:.1f} s after Ctrl-C)"
    assert usage is not None
    return Outcome(status, line, usage.ru_maxrss / 1024, time.monotonic() - start)


def printed(err: str, out: str, ctx: Ctx) -> str:
    """What a user sees: a traceback's last line, else the last line of stderr (else of stdout); the number of
    lines where stderr held more than one."""
    lines = [line for line in err.splitlines() if line.strip()]
    if not lines:
        lines_out = [line for line in out.splitlines() if line.strip()]
        return lines_out[-1].replace(str(ctx.s), "S")[:140] if lines_out else ""
    last = lines[-1].strip()
    if any(line.startswith("Traceback") for line in lines):
        last = "Traceback: " + last
    text = (f"({len(lines)} lines) " if len(lines) > 1 else "") + last
    return text.replace(str(ctx.s), "S").replace(str(ctx.tree), "TREE")[:180]


def run_case(case: Case, tree: Path, timeout: float) -> Outcome | str:
    """``case`` against ``tree`` in a fresh scratch folder; a string where it could not run."""
    if case.needs_mnist and MNIST is None:
        return "not run: needs the real MNIST"
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        ctx = Ctx(tree, Path(scratch))
        (ctx.s / "no-data").mkdir()
        try:
            if case.setup is not None:
                case.setup(ctx)
            outcome = measure(ctx, case, timeout)
            if case.check is not None:
                outcome.line += f"; {case.check(ctx)}"
            return outcome
        except (RuntimeError, OSError) as e:
            return f"not run: {e}"
        finally:
            for cleanup in reversed(ctx.cleanups):
                cleanup()


def cell(outcome: Outcome | str) -> str:
    if isinstance(outcome, str):
        return outcome
    text = f"rc {outcome.rc}, {outcome.peak_mib:.0f} MiB, {outcome.seconds:.1f} s: {outcome.line}"
    return text.replace("|", "\\|")


def shown(case: Case) -> str:
    """The command as the table shows it: S for the scratch folder, long lists of values counted."""
    if case.argv[0] == "-c":
        return f'`python -c "{case.argv[1]}"`'
    argv = [a if len(a) < 40 else f"{a[:12]}…({len(a.split(','))} values)" for a in case.argv]
    return "`mlpjax " + " ".join(argv).replace("{S}", "S").replace("|", "\\|") + "`"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=Path("/work/base"), help="the old tree (default: /work/base)")
    parser.add_argument("--after", type=Path, default=REPO, help="the new tree (default: this checkout)")
    parser.add_argument("--only", default="", help="items to run, e.g. 1,2,5 (default: all)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a command may run (default: 60)")
    args = parser.parse_args()
    only = set(args.only.split(",")) - {""}
    print(f"| item | command | before ({label(args.before)}) | after ({label(args.after)}) |")
    print("|---|---|---|---|")
    for case in CASES:
        if only and case.item.split(":")[0] not in only:
            continue
        before, after = (run_case(case, tree.resolve(), args.timeout) for tree in (args.before, args.after))
        print(f"| {case.item} | {shown(case)} | {cell(before)} | {cell(after)} |", flush=True)


def label(tree: Path) -> str:
    proc = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or str(tree)


if __name__ == "__main__":
    main()
