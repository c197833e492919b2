"""``python -m ttexplore``: see :mod:`ttexplore.cli`."""

import sys

from ttexplore.cli import main

if __name__ == "__main__":
    sys.exit(main())
