"""Samples rendered on the fly are the on-disk samples, bit for bit."""

import json
import pickle

import pytest
import torch
from torch.utils.data import DataLoader

from generator.config import GeneratorConfig
from generator.dataformat.dataset import TrajectoryDataset, read_metadata
from generator.dataformat.sources import open_source
from generator.pipeline.stream import RenderedSource, RenderedTrajectoryDataset, stream_metadata


def test_rendered_samples_equal_the_disk(small_dataset):
    meta = read_metadata(small_dataset)
    disk = open_source(small_dataset, meta)
    rendered = RenderedSource(GeneratorConfig(), meta["seed"])
    for index in (0, 5, 23):
        video, label = disk.read(index)
        r_video, r_label = rendered.read(index)
        assert r_video.dtype == torch.uint8
        assert torch.equal(video, r_video)
        # The label file adds the video's digest; every other field is the same, bit for bit.
        stored = {k: v for k, v in label.items() if k != "video_sha256"}
        assert json.dumps(stored, sort_keys=True) == json.dumps(r_label, sort_keys=True)


def test_stream_metadata_matches_what_generation_wrote(small_dataset):
    meta = read_metadata(small_dataset)
    streamed = stream_metadata(GeneratorConfig(), meta["seed"])
    for key in (
        "format_version",
        "render_version",
        "classes",
        "video_shape",
        "frames",
        "horizon",
        "future_frame_index",
        "fps",
        "scene_extent",
        "scene_bounds",
        "cameras",
        "config",
    ):
        assert json.loads(json.dumps(streamed[key])) == meta[key], key


def test_items_equal_the_disk_datasets_items(small_dataset):
    """Through the same item code: a rendered item of index i is the disk item of index i."""
    disk = TrajectoryDataset(
        small_dataset, "train", normalize=False, frame_stride=2, cameras=[1, 3]
    )
    stream = RenderedTrajectoryDataset(
        GeneratorConfig(),
        0,
        "val",
        val_samples=24,
        test_samples=4,
        epoch_samples=4,
        normalize=False,
        frame_stride=2,
        cameras=[1, 3],
    )
    by_index = {stream[k]["index"]: stream[k] for k in range(len(stream))}
    for k in range(len(disk)):
        item = disk[k]
        other = by_index[item["index"]]
        for key in ("video", "label", "future_position", "positions"):
            assert torch.equal(item[key], other[key]), key


def test_ranges_are_fixed_for_evaluation_and_fresh_for_training():
    kw = {"epoch_samples": 8, "val_samples": 4, "test_samples": 4, "stats_samples": 2}
    val = RenderedTrajectoryDataset(GeneratorConfig(), 3, "val", **kw)
    test = RenderedTrajectoryDataset(GeneratorConfig(), 3, "test", **kw)
    train = RenderedTrajectoryDataset(GeneratorConfig(), 3, "train", epochs=3, **kw)
    assert train.splits == {"train": range(8, 32), "val": range(4), "test": range(4, 8)}
    assert all(type(v) is range for v in train.splits.values())  # a long stream costs nothing
    assert list(val.indices) == [0, 1, 2, 3]
    assert list(test.indices) == [4, 5, 6, 7]
    assert list(train.indices) == list(range(8, 16))
    train.set_epoch(3)
    assert list(train.indices) == list(range(24, 32))
    assert len(train) == 8 and train[0]["index"] == 24
    # Classes come in shuffled blocks of four: every range of four holds each class once.
    assert sorted(int(val[k]["label"]) for k in range(4)) == [0, 1, 2, 3]


def test_workers_render_their_own_samples():
    """Pickled to DataLoader workers without the renderer; items match the main process."""
    kw = {"epoch_samples": 4, "val_samples": 4, "test_samples": 4, "stats_samples": 1}
    ds = RenderedTrajectoryDataset(GeneratorConfig(), 1, "train", normalize=False, **kw)
    ds[0]
    assert pickle.loads(pickle.dumps(ds.source))._maker is None
    ds.set_epoch(2)
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert batch["index"].tolist() == [12, 13, 14, 15]
    assert torch.equal(batch["video"][2], ds[2]["video"])


@pytest.mark.parametrize(
    "kw",
    [{"epoch_samples": 0}, {"epochs": 0}, {"val_samples": -1}, {"test_samples": 0}],
)
def test_bad_sizes_are_refused(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        RenderedTrajectoryDataset(GeneratorConfig(), 0, "train", **kw)


def test_bad_epoch_and_split_are_refused():
    ds = RenderedTrajectoryDataset(GeneratorConfig(), 0, "test", test_samples=4, stats_samples=1)
    with pytest.raises(ValueError, match="epoch"):
        ds.set_epoch(0)
    with pytest.raises(ValueError, match="split"):
        RenderedTrajectoryDataset(GeneratorConfig(), 0, "validation")
