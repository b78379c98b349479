"""``python -m train.parallel``: the extractors trained side by side, compared
(``train.trajectory.parallel``)."""

import sys

from train.trajectory.parallel import main

if __name__ == "__main__":
    sys.exit(main())
