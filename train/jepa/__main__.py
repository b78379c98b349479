"""``python -m train.jepa``: torch loads with a stop noted, not raised (``load_modules``)."""

import sys

from trajkit.cli import load_modules

load_modules("train.jepa.train")

from train.jepa.train import main  # noqa: E402  loaded above

sys.exit(main())
