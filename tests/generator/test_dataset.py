"""TrajectoryDataset: splits, items, errors."""

import hashlib
import json
import os
import shutil
from collections import Counter

import pytest
import torch

from generator.dataformat.dataset import (
    DatasetError,
    TrajectoryDataset,
    channel_stats,
    load_sample,
    read_metadata,
    split_indices,
)
from generator.dataformat.sources import load_video, open_source


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


def test_augmentation_changes_brightness_by_at_most_a_quarter(small_dataset):
    plain = TrajectoryDataset(small_dataset, "train", normalize=False)[1]["video"].double().mean()
    ds = TrajectoryDataset(small_dataset, "train", augment=True, normalize=False)
    torch.manual_seed(0)
    ratios = [float(ds[1]["video"].double().mean() / plain) for _ in range(30)]
    # brightness 0.25 scales by 0.75-1.25; contrast and saturation keep the grey mean
    assert 0.7 < min(ratios) < 0.95 and 1.05 < max(ratios) < 1.3


def test_split_seed_reaches_the_splits(small_dataset):
    def val(seed):
        return TrajectoryDataset(small_dataset, "val", split_seed=seed).indices

    assert val(0) == val(0) and any(val(0) != val(seed) for seed in (1, 2, 3))


def test_channel_stats_are_the_float64_mean_and_std_over_pixels(small_dataset):
    ds = TrajectoryDataset(small_dataset, "train")
    picks = ds.splits["train"][:5]
    mean, std = channel_stats(ds.source, picks)
    pixels = torch.stack([ds.source.read_video(i) for i in picks]).double() / 255.0
    pixels = pixels.transpose(0, 3).reshape(3, -1)  # (camera, frame, channel) -> channel first
    assert mean.dtype == std.dtype == torch.float64
    assert torch.allclose(mean, pixels.mean(dim=1), rtol=0, atol=1e-12)
    assert torch.allclose(std, pixels.std(dim=1, unbiased=False), rtol=0, atol=1e-12)


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
    with pytest.raises(
        DatasetError, match=f"sample_{ds.indices[0]:04d}.pt: the video's SHA-256 differs"
    ):
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


# ---------------------------------------------------------------- issue 22: damage is a DatasetError


@pytest.fixture
def copy(small_dataset, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(small_dataset, dst)
    return dst


def _rewrite_label(root, sample, **changes):
    """Change a label and its manifest's SHA-256 with it, so only the reader's own checks can object."""
    path = root / "labels" / f"sample_{sample:04d}.json"
    label = {**json.loads(path.read_text()), **changes}
    data = json.dumps(label).encode()
    path.write_bytes(data)
    for manifest in (root / "checkpoints").glob("checkpoint_*.json"):
        m = json.loads(manifest.read_text())
        for e in m["samples"]:
            if e["index"] == sample:
                e["label_sha256"] = hashlib.sha256(data).hexdigest()
        manifest.write_text(json.dumps(m))


def test_zero_byte_video_is_a_dataset_error(copy):
    ds = TrajectoryDataset(copy, "train")
    path = copy / "videos" / f"sample_{ds.indices[0]:04d}.pt"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match=f"{path.name} has 0 bytes"):
        ds[0]


def test_empty_torch_file_error_is_named(copy):
    path = copy / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty.pt is damaged"):  # EOFError has no message
        load_video(path)


@pytest.mark.timeout(60)
def test_fifo_and_links_out_are_refused_and_links_inside_accepted(copy):
    ds = TrajectoryDataset(copy, "train")
    a, b = (copy / "videos" / f"sample_{ds.indices[k]:04d}.pt" for k in (0, 1))
    a.unlink()
    os.mkfifo(a)
    with pytest.raises(DatasetError, match=f"{a.name} is a FIFO, not a regular file"):
        ds[0]
    outside = copy.parent / "elsewhere.pt"
    shutil.copyfile(b, outside)
    b.unlink()
    b.symlink_to(outside)
    with pytest.raises(DatasetError, match=f"{b.name} is a symlink out of the dataset folder"):
        ds[1]
    shutil.move(outside, copy / "moved.pt")
    b.unlink()
    b.symlink_to(copy / "moved.pt")
    assert ds[1]["video"].shape == (4, 3, 32, 64, 64)


def test_label_index_must_match_its_file(copy):
    _rewrite_label(copy, 3, index=4)
    with pytest.raises(DatasetError, match="sample_0003.json: the label says index 4, expected 3"):
        load_sample(copy, 3)


def test_a_label_vouching_for_another_video_is_refused(copy):
    """A label whose ``video_sha256`` is not its manifest's (taken from another dataset, or the
    manifest edited since): the reader hashed the label against its manifest and trained on it."""
    other = json.loads((copy / "labels" / "sample_0004.json").read_text())["video_sha256"]
    _rewrite_label(copy, 3, video_sha256=other)
    message = "sample_0003.json: the label's video_sha256 differs from its manifest"
    with pytest.raises(DatasetError, match=message):
        load_sample(copy, 3)
    splits = split_indices(open_source(copy, read_metadata(copy)).index.class_labels)
    ds = TrajectoryDataset(copy, next(name for name, picks in splits.items() if 3 in picks))
    with pytest.raises(DatasetError, match=message):
        ds[ds.indices.index(3)]


def test_class_label_out_of_range_is_refused(copy):
    _rewrite_label(copy, 2, class_label=4)
    with pytest.raises(DatasetError, match="class_label 4 is not one of 0..3"):
        load_sample(copy, 2)
    _rewrite_label(copy, 2, class_label=-1)
    with pytest.raises(DatasetError, match="class_label -1 is not one of 0..3"):
        load_sample(copy, 2)
    _rewrite_label(copy, 2, class_label=3)
    assert load_sample(copy, 2)[1]["class_label"] == 3


def test_label_missing_a_key_or_of_a_wrong_type_is_refused(copy):
    label = json.loads((copy / "labels" / "sample_0001.json").read_text())
    del label["positions"]
    path = copy / "labels" / "sample_0001.json"
    path.write_text(json.dumps(label))
    with pytest.raises(DatasetError, match="sample_0001.json: the label's SHA-256 differs"):
        load_sample(copy, 1)
    _rewrite_label(copy, 1, positions=None)
    with pytest.raises(DatasetError, match="sample_0001.json is damaged: positions"):
        load_sample(copy, 1)
    _rewrite_label(copy, 1, class_label="1")  # strict: a string is not a number
    with pytest.raises(DatasetError, match="sample_0001.json is damaged: class_label"):
        load_sample(copy, 1)


def test_only_uint8_tensors_are_videos(tmp_path):
    path = tmp_path / "v.pt"
    torch.save(torch.zeros((2, 3), dtype=torch.int16), path)
    with pytest.raises(DatasetError, match="v.pt does not hold a uint8 tensor"):
        load_video(path)
    torch.save(torch.zeros((2, 3), dtype=torch.uint8), path)
    assert load_video(path, (2, 3)).dtype == torch.uint8
    with pytest.raises(DatasetError, match=r"has shape \(2, 3\), expected \(3, 2\)"):
        load_video(path, (3, 2))


def test_a_video_changed_in_place_is_refused_by_every_read(copy):
    """Eight bytes overwritten inside the tensor keep the size and still load (the values
    differ): only its manifest's SHA-256 shows it, and the plain reader trained on it."""
    path = copy / "videos" / "sample_0000.pt"
    before = torch.load(path, weights_only=True)
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"XXXXXXXX")
    changed = torch.load(path, weights_only=True)
    assert changed.shape == before.shape and 0 < int((changed != before).sum()) <= 8
    with pytest.raises(DatasetError, match="sample_0000.pt: the video's SHA-256 differs"):
        load_sample(copy, 0)
    labels = open_source(copy, read_metadata(copy)).index.class_labels
    split = next(name for name, picks in split_indices(labels).items() if 0 in picks)
    ds = TrajectoryDataset(copy, split, stats=(torch.zeros(3), torch.ones(3)))
    with pytest.raises(DatasetError, match="sample_0000.pt: the video's SHA-256 differs"):
        ds[ds.indices.index(0)]


def test_metadata_of_an_unknown_format_or_wrong_types_is_refused(copy):
    path = copy / "metadata.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "format": "zip"}))
    with pytest.raises(DatasetError, match="has format 'zip'; this reader knows pt, shards"):
        TrajectoryDataset(copy)
    path.write_text(json.dumps({**meta, "total_samples": "24"}))
    with pytest.raises(DatasetError, match="metadata.json is damaged: total_samples"):
        TrajectoryDataset(copy)
    path.write_text(json.dumps(meta))
    fp = copy / "checkpoints" / "fingerprint.json"
    fp.write_text(json.dumps({**json.loads(fp.read_text()), "stem_width": 5}))
    with pytest.raises(
        DatasetError, match="fingerprint.json differs from metadata.json in 'stem_width'"
    ):
        TrajectoryDataset(copy)


def test_verify_hashes_shard_samples_too(small_shard_dataset, tmp_path):
    copy = tmp_path / "shards"
    shutil.copytree(small_shard_dataset, copy)
    manifest = sorted((copy / "checkpoints").glob("checkpoint_*.json"))[0]
    m = json.loads(manifest.read_text())
    entry = m["samples"][0]
    entry["video_sha256"] = "0" * 64
    manifest.write_text(json.dumps(m))
    index = entry["index"]
    # the plain reader does not hash the video; its label still vouches for another one
    label_says = f"sample_{index:04d}.json: the label's video_sha256 differs from its manifest"
    with pytest.raises(DatasetError, match=label_says):
        load_sample(copy, index)
    splits = split_indices(open_source(copy, read_metadata(copy)).index.class_labels)
    split = next(name for name, picks in splits.items() if index in picks)
    with pytest.raises(DatasetError, match=f"sample_{index:04d}: the video's SHA-256 differs"):
        ds = TrajectoryDataset(copy, split, verify=True)  # a training split's statistics read it
        [ds[i] for i in range(len(ds))]


def test_a_deal_without_training_samples_takes_no_statistics_from_val_or_test(copy):
    """It fell back to the first samples, val and test ones among them."""
    (copy / "normalization.json").unlink(missing_ok=True)
    with pytest.raises(DatasetError, match="no training samples to take normalisation statistics"):
        TrajectoryDataset(copy, "val", fractions=(0.0, 0.5, 0.5))
    assert not (copy / "normalization.json").exists()
    given = (torch.full((3,), 0.5), torch.full((3,), 0.25))
    ds = TrajectoryDataset(copy, "val", fractions=(0.0, 0.5, 0.5), stats=given)
    assert ds.splits["train"] == [] and len(ds) + len(ds.splits["test"]) == 24
    assert torch.equal(ds.mean, given[0]) and ds[0]["video"].dtype == torch.float32


def test_each_split_seed_normalises_by_its_own_training_samples(copy):
    """The cache stood for any deal of the dataset's size: a run of another split seed took
    its statistics partly from its own val and test samples. A cache from then is not read."""
    path = copy / "normalization.json"
    old = {"total_samples": 24, "samples_used": 24, "mean": [0.9] * 3, "std": [0.1] * 3}
    path.write_text(json.dumps(old))
    source = open_source(copy, read_metadata(copy))
    trains = {}
    for seed in (0, 1, 0):
        ds = TrajectoryDataset(copy, "test", split_seed=seed)
        trains[seed] = ds.splits["train"]
        mean, std = channel_stats(source, ds.splits["train"])  # all of them: under 64
        assert torch.allclose(ds.mean, mean.float()) and torch.allclose(ds.std, std.float())
        assert json.loads(path.read_text())["samples_used"] == ds.splits["train"]
    assert set(trains[0]) != set(trains[1])
    # a cache of this very deal is read, not computed again
    path.write_text(json.dumps({"samples_used": trains[0], "mean": [0.5] * 3, "std": [0.25] * 3}))
    assert TrajectoryDataset(copy, "test", split_seed=0).mean.tolist() == [0.5] * 3


def test_metadata_from_before_formats_reads_as_pt_and_unknown_formats_are_refused(copy):
    path = copy / "metadata.json"
    meta = json.loads(path.read_text())
    del meta["format"]
    path.write_text(json.dumps(meta))
    assert read_metadata(copy).get("format") is None
    assert len(TrajectoryDataset(copy, "val")) > 0
    with pytest.raises(DatasetError, match="has format 'zip'; this reader knows pt, shards"):
        open_source(copy, {**meta, "format": "zip"})


def test_a_missing_video_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match="gone.pt is missing"):
        load_video(tmp_path / "gone.pt")


def test_a_file_that_cannot_be_opened_is_named_with_the_reason(tmp_path, monkeypatch):
    from generator.dataformat import sources

    path = tmp_path / "f.json"
    path.write_text("{}")

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sources, "open", refused, raising=False)
    with pytest.raises(DatasetError, match=r"f\.json cannot be read \(Permission denied\)"):
        sources.read_file(path, tmp_path)
