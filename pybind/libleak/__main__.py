"""``python -m libleak run ...`` / ``python -m libleak report ...``: the command line (libleak.cli)."""

import sys

from libleak.cli import main

if __name__ == "__main__":
    sys.exit(main())
