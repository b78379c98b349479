"""``python -m train``: one trajectory training run (``train.trajectory.cli``)."""

import sys

from train.trajectory.cli import main

if __name__ == "__main__":
    sys.exit(main())
