"""python3 -m scalene: the command line (see scalene.cli)."""

import sys

from scalene.cli import main

if __name__ == "__main__":
    sys.exit(main())
