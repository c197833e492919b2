"""How long the CLI takes to start: ``python benchmarks/startup.py [--runs 7] [--compare OTHER_TREE]``.

Times, from outside and as a user runs them (a fresh ``python`` process each time, a private
``TTEXPLORE_HOME`` shared by the runs of one tree, so a cache written by its first run is read
by the next, as on a user's machine):

* ``train``: ``python -m ttexplore train --dataset digits --epochs 1 --quiet``: the wall seconds
  to its **first batch** (the first optimizer step, stamped by a global step hook, the public
  ``torch.optim.optimizer.register_optimizer_step_pre_hook``, installed before the CLI runs) and
  the CPU seconds the process had used by then (``first_batch_cpu_s``: what a quiet machine's wall
  time would be, the start-up being one thread; other processes inflate it far less than the wall
  time), to its exit, and its CPU seconds to exit (user + system of the child);
* ``count``: ``python -m ttexplore count --ranks 3`` and ``help``: ``python -m ttexplore --help``
  (wall and CPU to exit).

Each command runs once unmeasured (the warm-up, which also writes the dataset cache), then
``--runs`` times; with ``--compare`` the two trees' runs alternate (A B A B ...) so that both
see the same load. Prints the median, min and max of each figure; the machine is noisy when
they spread. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

#: The child: stamps the wall clock at the first optimizer step on the pipe $STARTUP_STAMP_FD, then runs the CLI.
CHILD = """
import os, resource, sys, time
import torch.optim.optimizer as optimizer_module
stamp = os.fdopen(int(os.environ.pop("STARTUP_STAMP_FD")), "w")
def first_step(optimizer, args, kwargs):
    if not stamp.closed:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stamp.write(repr((time.time(), usage.ru_utime + usage.ru_stime)))
        stamp.close()
optimizer_module.register_optimizer_step_pre_hook(first_step)
from ttexplore.cli import main
sys.exit(main(sys.argv[1:]))
"""

COMMANDS = {
    "train": ["train", "--dataset", "digits", "--epochs", "1", "--quiet"],
    "count": ["count", "--ranks", "3"],
    "help": ["--help"],
}


def run_once(tree: Path, home: Path, name: str) -> dict[str, float]:
    """One run of command ``name`` in ``tree``: wall seconds to exit (and to the first batch for
    ``train``) and CPU seconds of the child."""
    env = {**os.environ, "TTEXPLORE_HOME": str(home), "TTEXPLORE_OFFLINE": "1"}
    env.pop("TTEXPLORE_DATA", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name == "train":
        read_end, write_end = os.pipe()
        started = time.time()
        child = subprocess.Popen([sys.executable, "-c", CHILD, *COMMANDS[name]], cwd=tree,
                                 env={**env, "STARTUP_STAMP_FD": str(write_end)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,))
        os.close(write_end)
        with os.fdopen(read_end) as stamp:
            stamped = stamp.read()
        code = child.wait()
    else:
        started = time.time()
        code = subprocess.call([sys.executable, "-m", "ttexplore", *COMMANDS[name]], cwd=tree, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stamped = ""
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"{name} in {tree} exited {code}")
    figures = {"wall_s": ended - started,
               "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    if stamped:
        wall_clock, cpu_seconds = ast.literal_eval(stamped)
        figures["first_batch_s"] = wall_clock - started
        figures["first_batch_cpu_s"] = cpu_seconds
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per command and tree (default 7)")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout of ttexplore (the baseline)")
    parser.add_argument("--commands", default="train,count,help", help="comma-separated: train, count, help")
    args = parser.parse_args()
    if not 1 <= args.runs <= 100:
        parser.error("--runs: between 1 and 100")
    trees = {"this": HERE} | ({"compare": args.compare.resolve()} if args.compare else {})
    names = [name for name in args.commands.split(",") if name]
    unknown = [name for name in names if name not in COMMANDS]
    if unknown:
        parser.error(f"--commands: unknown {', '.join(unknown)}; choose from {', '.join(COMMANDS)}")
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as scratch:
        homes = {label: Path(scratch) / label for label in trees}
        for name in names:
            samples: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
            for label, tree in trees.items():
                run_once(tree, homes[label], name)  # warm-up: page cache, and the dataset cache of a new home
            for _ in range(args.runs):
                for label, tree in trees.items():
                    samples[label].append(run_once(tree, homes[label], name))
            for label, runs in samples.items():
                for figure in runs[0]:
                    values = [run[figure] for run in runs]
                    print(f"{name:5} {label:7} {figure:17} median {statistics.median(values):6.3f}  "
                          f"min {min(values):6.3f}  max {max(values):6.3f}  (n={len(values)})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
