import sys

from openjepa.cli import main

sys.exit(main())
