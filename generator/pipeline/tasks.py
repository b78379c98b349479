"""Generation tasks, the unit of work a joblib (or Dask) worker runs.

A task renders a list of sample indices and writes them, as per-sample files
(format "pt") or as one shard (format "shards"), and returns their manifest
entries; the parent writes the manifest. Arguments are plain values (the
config as JSON), so a task pickles cheaply to a local process or a remote
Dask worker, and its output depends only on them.
"""

from __future__ import annotations

import gc

from generator.config import GeneratorConfig
from generator.dataformat.layout import Layout
from generator.dataformat.writer import SampleWriter
from generator.render.sample import SampleMaker

_MAKERS: dict[str, SampleMaker] = {}


def maker_for(cfg_json: str) -> SampleMaker:
    """One renderer per config per worker process: building the rig and noise bank is not free."""
    if cfg_json not in _MAKERS:
        _MAKERS[cfg_json] = SampleMaker(GeneratorConfig.model_validate_json(cfg_json))
        # Torch, numpy and the rig are here for good: keep the collector off them (3% of CPU).
        gc.freeze()
    return _MAKERS[cfg_json]


def render_task(cfg_json: str, seed: int, root: str, width: int, indices: list[int]) -> list[dict]:
    """Render and write ``indices`` as ``videos/*.pt`` and ``labels/*.json``."""
    import torch

    maker = maker_for(cfg_json)
    with SampleWriter(Layout(root, width)) as writer:
        for i in indices:
            video, label = maker.make(seed, i)
            writer.add(i, torch.from_numpy(video), label)
    return writer.entries


def render_shard_task(
    cfg_json: str,
    seed: int,
    root: str,
    width: int,
    level: int,
    start: int,
    end: int,
    compression: str = "zstd",
) -> dict:
    """Render samples ``start..end-1`` into the shard that begins at ``start``.

    Returns ``{"samples": manifest entries, "shard": name, range, SHA-256, bytes}``.
    """
    from generator.dataformat.shards import ShardWriter

    maker = maker_for(cfg_json)
    layout = Layout(root, width)
    writer = ShardWriter(layout.shard(start, compression), level)
    try:
        for i in range(start, end):
            video, label = maker.make(seed, i)
            writer.add(i, layout.stem(i), video, label)
    except BaseException as e:
        writer.abort(e)
        raise
    return writer.close()
