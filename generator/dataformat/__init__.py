"""Dataset format v1: its layout, manifests, both storage layouts (per-sample ``.pt`` files
and tar shards), the writers, the reader (``TrajectoryDataset``, ``make_loader``) and
``validate``. It imports nothing of the renderer or the pipeline; see docs/architecture.md."""
