"""The trajectory trainer: extractors on the generator's multi-camera videos, class and future
position heads (``python -m train``, ``python -m train.parallel``); a sibling of ``train.jepa``
and ``train.saliency`` on the shared layer of ``train/`` (run folder, checkpoints, launcher,
Slurm, distributed set-up, summaries)."""
