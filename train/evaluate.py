"""``python -m train.evaluate``: trained runs scored on any dataset
(``train.trajectory.evaluate_cli``)."""

import sys

from train.trajectory.evaluate_cli import main

if __name__ == "__main__":
    sys.exit(main())
