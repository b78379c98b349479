"""``python -m train.evaluate``: trained runs scored on any dataset
(``train.trajectory.evaluate_cli``)."""

from train.trajectory.evaluate_cli import main
from trajkit.cli import entry_point

run = entry_point(main)  # python -m train.evaluate and its console script

if __name__ == "__main__":
    run()
