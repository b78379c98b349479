"""``python -m train``: one trajectory training run (``train.trajectory.cli``)."""

from train.trajectory.cli import main
from trajkit.cli import entry_point

run = entry_point(main)  # python -m train and its console script

if __name__ == "__main__":
    run()
