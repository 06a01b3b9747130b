"""``python -m openjepa`` (and ``torchrun -m openjepa``): the command line."""

import sys

from openjepa.cli import main

if __name__ == "__main__":
    sys.exit(main())
