"""Run the TT-layer benchmark suite: ``python benchmarks/run_bench.py [--quick] [--cases ...]``.

The same as ``python -m ttexplore bench``; see :mod:`ttexplore.cli.bench` for the options.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ttexplore.cli.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
