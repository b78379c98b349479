"""TrajectoryDataset: splits, items, errors."""

import json
import shutil
from collections import Counter

import pytest
import torch

from generator.dataset import DatasetError, TrajectoryDataset, split_indices


def test_splits_are_disjoint_stratified_and_cover_everything():
    classes = [i % 4 for i in range(800)]
    s = split_indices(classes)
    train, val, test = set(s["train"]), set(s["val"]), set(s["test"])
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(800))
    for name, want in (("train", 160), ("val", 20), ("test", 20)):
        assert Counter(classes[i] for i in s[name]) == {c: want for c in range(4)}


def test_splits_are_stable_when_the_dataset_grows_and_depend_on_the_seed():
    classes = [(i * 7) % 4 for i in range(1000)]
    small, big = split_indices(classes[:333]), split_indices(classes)
    for name in small:
        assert set(small[name]) == {i for i in big[name] if i < 333}
    assert split_indices(classes, seed=1)["val"] != big["val"]


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="fractions"):
        split_indices([0, 1], (0.5, 0.3, 0.3))


def test_items_have_the_documented_shapes_and_types(small_dataset):
    ds = TrajectoryDataset(small_dataset, "train")
    item = ds[0]
    assert item["video"].shape == (4, 3, 32, 64, 64) and item["video"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["future_position"].shape == (3,)
    assert abs(float(item["video"].mean())) < 1.0  # normalised
    sizes = {s: len(TrajectoryDataset(small_dataset, s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 24
    label = json.loads((small_dataset / "labels" / f"sample_{item['index']:04d}.json").read_text())
    assert item["future_position"].tolist() == pytest.approx(label["future_position"])
    assert item["positions"].shape == (32, 3) and item["positions"].dtype == torch.float32
    assert torch.allclose(item["positions"], torch.tensor(label["positions"][:32]))
    assert (small_dataset / "normalization.json").exists()


def test_camera_subset_and_temporal_stride(small_dataset):
    ds = TrajectoryDataset(small_dataset, "val", cameras=[0, 2], frame_stride=4)
    full = TrajectoryDataset(small_dataset, "val")
    a, b = ds[0]["video"], full[0]["video"]
    assert a.shape == (2, 3, 8, 64, 64)
    assert torch.equal(ds[0]["positions"], full[0]["positions"][::4])
    assert torch.equal(a[1], b[2, :, ::4])
    swapped = TrajectoryDataset(small_dataset, "val", cameras=[3, 1])[0]["video"]
    assert torch.equal(swapped[0], b[3]) and torch.equal(swapped[1], b[1])


def test_augmentation_keeps_the_geometry(small_dataset):
    torch.manual_seed(0)
    plain = TrajectoryDataset(small_dataset, "train")[1]["video"]
    jittered = TrajectoryDataset(small_dataset, "train", augment=True)[1]["video"]
    assert jittered.shape == plain.shape and not torch.equal(jittered, plain)
    # Colour jitter moves values, not pixels: the spatial pattern stays correlated.
    assert torch.corrcoef(torch.stack([plain.flatten(), jittered.flatten()]))[0, 1] > 0.8


def test_works_with_dataloader_workers(small_dataset):
    loader = torch.utils.data.DataLoader(
        TrajectoryDataset(small_dataset, "train"), batch_size=4, num_workers=2
    )
    batch = next(iter(loader))
    assert batch["video"].shape == (4, 4, 3, 32, 64, 64)


def test_errors_name_the_problem(small_dataset, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        TrajectoryDataset(tmp_path / "missing")
    copy = tmp_path / "copy"
    shutil.copytree(small_dataset, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["format_version"] = 99
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="format_version 99"):
        TrajectoryDataset(copy)
    meta["format_version"] = 1
    (copy / "metadata.json").write_text(json.dumps(meta))
    ds = TrajectoryDataset(copy, "train")
    video = copy / "videos" / f"sample_{ds.indices[0]:04d}.pt"
    size = video.stat().st_size
    video.write_bytes(b"garbage")
    with pytest.raises(
        DatasetError,
        match=f"sample_{ds.indices[0]:04d}.pt has 7 bytes; its manifest records {size}",
    ):
        ds[0]
    video.write_bytes(b"garbage".ljust(size, b"\0"))  # the recorded size, not a zip
    with pytest.raises(DatasetError, match=f"sample_{ds.indices[0]:04d}.pt is damaged"):
        ds[0]
    with pytest.raises(ValueError, match="cameras"):
        TrajectoryDataset(copy, cameras=[7])


def test_uint8_items_normalised_on_the_consumer_match_float_items(small_dataset):
    floats = TrajectoryDataset(small_dataset, "train")
    raw = TrajectoryDataset(small_dataset, "train", normalize=False)
    item = raw[1]["video"]
    assert item.dtype == torch.uint8 and item.shape == (4, 3, 32, 64, 64)
    batch = torch.stack([raw[0]["video"], raw[1]["video"]])
    torch.testing.assert_close(raw.normalize_batch(batch)[1], floats[1]["video"])
