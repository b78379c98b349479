"""Samples rendered on demand inside the DataLoader's workers, never written to disk.

Sample ``i`` of ``(seed, config)`` depends on nothing else, so rendering it where it is
consumed gives the same bytes as sample ``i`` of a dataset generated on disk, at about
2 CPU ms a sample: a trainer can draw fresh samples every epoch for as long as it runs.
Validation and test are fixed index ranges at the start of the stream (classes come in
shuffled blocks of one of each class, so a range from 0 is balanced to within one); training
samples come after them, a new range every epoch.
"""

from __future__ import annotations

import torch

from generator.config import GeneratorConfig
from generator.dataformat.dataset import SPLITS, TrajectoryDataset, channel_stats
from generator.dataformat.layout import FORMAT_VERSION
from generator.dataformat.metadata import clip_metadata
from generator.pipeline.metadata import rig_metadata
from generator.render.sample import RENDER_VERSION, SampleMaker


def stream_metadata(cfg: GeneratorConfig, seed: int) -> dict:
    """What a reader needs of ``metadata.json``, for a dataset that exists only as a stream."""
    return {
        "format_version": FORMAT_VERSION,
        "render_version": RENDER_VERSION,
        "format": "rendered",
        "classes": list(cfg.class_names),
        **clip_metadata(cfg),
        "seed": seed,
        "cameras": rig_metadata(cfg),
        "config": cfg.model_dump(mode="json"),
    }


class RenderedSource:
    """``read(i)`` renders sample ``i``; the renderer is built on first use in each process."""

    def __init__(self, cfg: GeneratorConfig, seed: int) -> None:
        self.cfg, self.seed = cfg, seed
        self._maker: SampleMaker | None = None

    def __getstate__(self) -> dict:
        return {"cfg": self.cfg, "seed": self.seed, "_maker": None}  # workers build their own

    def read(self, index: int) -> tuple[torch.Tensor, dict]:
        if self._maker is None:
            self._maker = SampleMaker(self.cfg)
        video, label = self._maker.make(self.seed, index)
        return torch.from_numpy(video), label

    def read_video(self, index: int) -> torch.Tensor:
        return self.read(index)[0]

    def read_label(self, index: int) -> dict:
        return self.read(index)[1]


class RenderedTrajectoryDataset(TrajectoryDataset):
    """``TrajectoryDataset``'s items from samples rendered on the fly.

    Indices ``[0, val_samples)`` are validation, the next ``test_samples`` are test, and
    training samples follow: epoch ``e`` (``set_epoch``) reads the ``epoch_samples``
    after the ``e - 1`` epochs before it, so no training sample is ever seen twice.
    ``splits`` lists the indices of each split over ``epochs`` epochs.
    """

    def __init__(
        self,
        cfg: GeneratorConfig,
        seed: int,
        split: str = "train",
        *,
        epoch_samples: int = 1600,
        epochs: int = 1,
        val_samples: int = 200,
        test_samples: int = 200,
        cameras: list[int] | None = None,
        frame_stride: int = 1,
        augment: bool = False,
        normalize: bool = True,
        stats_samples: int = 64,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        for name, value in (
            ("epoch_samples", epoch_samples),
            ("epochs", epochs),
            ("val_samples", val_samples),
            ("test_samples", test_samples),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.cfg, self.seed, self.split = cfg, seed, split
        self.meta = stream_metadata(cfg, seed)
        self.source = RenderedSource(cfg, seed)
        self.epoch_samples = epoch_samples
        self.train_start = val_samples + test_samples
        self.ranges = {
            "val": range(0, val_samples),
            "test": range(val_samples, self.train_start),
        }
        self.epoch = 1
        self.indices = self._indices()
        # What a run folder's splits.json records: every sample ``epochs`` epochs will read,
        # kept as ranges (an unbounded stream's training indices would not fit in a list).
        train = range(self.train_start, self.train_start + epochs * epoch_samples)
        self.splits = {"train": train, **self.ranges}
        # The normalisation statistics come from the first training samples, as on disk.
        first = self.train_start
        mean, std = channel_stats(
            self.source, range(first, first + min(stats_samples, epoch_samples))
        )
        self._set_view(cameras, frame_stride, augment, normalize, (mean.float(), std.float()))

    def _indices(self) -> range:
        if self.split != "train":
            return self.ranges[self.split]
        first = self.train_start + (self.epoch - 1) * self.epoch_samples
        return range(first, first + self.epoch_samples)

    def set_epoch(self, epoch: int) -> None:
        """Fresh training samples for ``epoch`` (1-based); validation and test never move."""
        if epoch < 1:
            raise ValueError(f"epoch must be at least 1, got {epoch}")
        self.epoch = epoch
        self.indices = self._indices()
