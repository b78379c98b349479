"""Dataset format v1: its layout, manifests and records (``metadata.json``, fingerprint), both
storage layouts (per-sample ``.pt`` files and tar shards), the writers, the reader
(``TrajectoryDataset``, ``make_loader``), ``validate``, ``convert`` between the layouts and
the rules ``push``/``pull`` follow for a dataset folder. It imports nothing of the renderer
or the pipeline; see docs/architecture.md."""
