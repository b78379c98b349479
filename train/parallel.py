"""``python -m train.parallel``: the extractors trained side by side, compared
(``train.trajectory.parallel``)."""

from train.trajectory.parallel import main
from trajkit.cli import entry_point

run = entry_point(main)  # python -m train.parallel and its console script

if __name__ == "__main__":
    run()
