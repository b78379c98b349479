"""``python -m train.jepa``: torch loads with a stop noted, not raised (``load_modules``)."""

from trajkit.cli import load_modules

load_modules("train.jepa.train")

from train.jepa.train import run  # noqa: E402  loaded above

run()
