"""torch's ``DataLoader``, whose worker processes start with stops deferred.

Its workers are forked when an iteration starts; a Ctrl-C or SIGTERM arriving during the
fork raised its ``KeyboardInterrupt`` inside one of the interpreter's at-fork hooks, where
it is printed as "Exception ignored" and lost: the run went on (2 of 14 stops sent at an
epoch's start, in a probe of ``python -m train --workers 2``). Deferred, the stop is
delivered once the workers are up, and the trainer stops as it does anywhere else.
"""

from __future__ import annotations

import torch.utils.data

from trajkit.cli import interrupts_deferred


class DataLoader(torch.utils.data.DataLoader):
    def __iter__(self):
        with interrupts_deferred():
            return super().__iter__()
