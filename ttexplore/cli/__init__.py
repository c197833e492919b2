"""``python -m ttexplore <command>``: the command line.

The CLI holds no logic of its own: each command's module parses flags into a
:class:`~ttexplore.runs.config.RunConfig` (or its own spec), calls the library,
and prints. A bad argument, or a bad ``TTEXPLORE_*`` environment variable, prints one line
naming it and the fix and exits with code 2.

One module per command group, each exposing ``configure_parser(parser)`` and
``run(args) -> int`` (``count`` holds two commands). A command's module is
imported only when that command runs, so ``count`` or ``--help`` never import torch.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import Optional, Sequence

from ttexplore import __version__
from ttexplore.cli.common import EXIT_FAILED, EXIT_USAGE, Parser, UsageError
from ttexplore.tt.atomic import WriteError
from ttexplore.tt.text import terminal_lines

__all__ = ["main", "build_parser", "check_environment", "UsageError", "COMMANDS"]

#: ``name: (module, configure function, run function, one-line help)``.
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "train": ("ttexplore.cli.train", "configure_parser", "run", "train one network and report its accuracy"),
    "count": ("ttexplore.cli.count", "configure_count", "run_count",
              "layer weights, compression, ranks and FLOPs of a shape (no training)"),
    "suggest": ("ttexplore.cli.count", "configure_suggest", "run_suggest",
                "tensorizations of an N -> M layer, fewest weights first"),
    "runs": ("ttexplore.cli.runs", "configure_parser", "run",
             "the recorded runs: list, show, resume, edit, delete, export"),
    "sweep": ("ttexplore.cli.sweep", "configure_parser", "run",
              "train a grid of shapes x ranks (+ baselines); write results.csv and the accuracy-vs-weights figure"),
    "compress": ("ttexplore.cli.compress", "configure_parser", "run",
                 "TT-SVD of a trained layer at several ranks, fine-tuned, beside TT nets trained from scratch"),
    "bench": ("ttexplore.cli.bench", "configure_parser", "run",
              "time every TT forward strategy against nn.Linear; write CSV, summary and a plot"),
}


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The ``ttexplore`` argument parser.

    Args:
        command: the sub-command about to run; only its module is imported and
            only its flags are added (the others list their one-line help), so
            ``count`` or ``--help`` never import torch. ``None`` adds none.
    """
    parser = Parser(prog="ttexplore", description="Explore Tensor-Train (TT) fully-connected layers.")
    parser.add_argument("--version", action="version", version=f"ttexplore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for name, (module_name, configure, run, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        if command == name:
            module = importlib.import_module(module_name)
            getattr(module, configure)(sub)
            sub.set_defaults(handler=getattr(module, run))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 the run failed, 2 a bad argument, 130 interrupted)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    parser = build_parser(command)
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # SIGTERM ends a command like Ctrl-C
    try:
        args = parser.parse_args(arguments)
        check_environment(args.command)
        return int(args.handler(args) or 0)
    except UsageError as error:  # its text may quote what the user typed: made inert for the terminal
        print(terminal_lines(error), file=sys.stderr)
        return EXIT_USAGE
    except WriteError as error:  # a file could not be written (full disk, read-only, ...): one line, no traceback
        print(terminal_lines(f"ttexplore {command}: error: {error}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``runs list | head``): nothing more to say
        sys.stderr.close()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_environment(command: str) -> None:
    """Refuse to start on a bad ttexplore environment variable (:func:`~ttexplore.runs.settings.environment_problems`).

    Raises:
        UsageError: one line per bad variable, each naming it and the fix.
    """
    from ttexplore.runs.settings import environment_problems

    problems = environment_problems()
    if problems:
        raise UsageError("\n".join(f"ttexplore {command}: error: {problem}" for problem in problems))


def _terminate_as_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
