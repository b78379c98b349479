import sys

from train.jepa.train import main

sys.exit(main())
