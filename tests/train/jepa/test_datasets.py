import numpy as np
import pytest
import torch
from PIL import Image

from train.jepa.config import DatasetSpec
from train.jepa.datasets import (
    ClassSubsetImageFolder,
    DatasetMissing,
    build_dataset,
    imagenet100_classes,
)
from train.jepa.synthetic import CLASSES, SyntheticTextures


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_loads_real_pickle_format_with_md5_check(tmp_path, monkeypatch, jepa_files, kind):
    md5s = jepa_files.write_cifar(tmp_path / kind, kind, n_train=20, n_test=10)
    jepa_files.patch_md5s(monkeypatch, kind, md5s)
    spec = DatasetSpec(kind=kind)
    train, test = build_dataset(spec, tmp_path, "pretrain"), build_dataset(spec, tmp_path, "test")
    assert len(train) == 20 and len(test) == 10
    image, label = train[0]
    assert image.size == (32, 32) and 0 <= label < (10 if kind == "cifar10" else 100)


def test_corrupted_cifar_is_rejected_with_download_hint(tmp_path, monkeypatch, jepa_files):
    md5s = jepa_files.write_cifar(tmp_path / "cifar10", "cifar10")
    jepa_files.patch_md5s(monkeypatch, "cifar10", md5s)
    batch = tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:-1] + b"x")
    with pytest.raises(DatasetMissing, match="train.jepa.download cifar10"):
        build_dataset(DatasetSpec(kind="cifar10"), tmp_path, "train")


def test_stl10_binary_splits(tmp_path, monkeypatch, jepa_files):
    md5s = jepa_files.write_stl10(tmp_path / "stl10", n_train=6, n_unlabeled=4, n_test=5)
    jepa_files.patch_md5s(monkeypatch, "stl10", md5s)
    spec = DatasetSpec(kind="stl10")
    pretrain = build_dataset(spec, tmp_path, "pretrain")
    assert len(pretrain) == 10  # train + unlabeled
    assert len(build_dataset(spec, tmp_path, "train")) == 6
    test = build_dataset(spec, tmp_path, "test")
    assert len(test) == 5 and test[3][1] == 3  # labels stored 1..10, read 0..9
    raw = np.fromfile(tmp_path / "stl10" / "stl10_binary" / "test_X.bin", dtype=np.uint8)
    first = raw.reshape(-1, 3, 96, 96)[0].transpose(2, 1, 0)  # column-major on disk
    assert np.array_equal(np.asarray(test[0][0]), first)


def _image_folder(root, classes, per_class=2):
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (20, 16), (i * 40, 0, 0)).save(root / split / c / f"{c}_{i}.JPEG")


def test_imagenet100_list_is_the_cmc_subset():
    wnids = imagenet100_classes()
    assert len(wnids) == 100 == len(set(wnids))
    assert all(w.startswith("n") and len(w) == 9 for w in wnids)
    assert wnids[0] == "n02869837" and wnids[-1] == "n02090622"  # CMC file order


def test_imagenet_folder_and_imagenet100_filter(tmp_path):
    wnids = imagenet100_classes()
    extra = ["n01440764", "n01443537"]  # ImageNet classes outside the subset
    _image_folder(tmp_path / "imagenet", wnids + extra, per_class=1)
    full = build_dataset(DatasetSpec(kind="imagenet"), tmp_path, "train")
    assert len(full.classes) == 102
    subset = build_dataset(DatasetSpec(kind="imagenet100"), tmp_path, "test")
    assert subset.classes == sorted(wnids) and len(subset) == 100
    assert not any(e in path for path, _ in subset.samples for e in extra)


def test_imagenet100_missing_class_is_named(tmp_path):
    _image_folder(tmp_path / "in", imagenet100_classes()[:99], per_class=1)
    with pytest.raises(DatasetMissing, match="lacks 1 of the 100"):
        ClassSubsetImageFolder(tmp_path / "in" / "train", imagenet100_classes())


def test_missing_dataset_message(tmp_path):
    with pytest.raises(DatasetMissing, match="python -m train.jepa.download stl10"):
        build_dataset(DatasetSpec(kind="stl10"), tmp_path, "train")


def test_synthetic_is_deterministic_balanced_and_split():
    a = SyntheticTextures(30, "train", image_size=16, seed=3)
    b = SyntheticTextures(30, "train", image_size=16, seed=3)
    test = SyntheticTextures(30, "test", image_size=16, seed=3)
    assert np.array_equal(np.asarray(a[7][0]), np.asarray(b[7][0]))
    assert not np.array_equal(np.asarray(a[7][0]), np.asarray(test[7][0]))
    assert np.bincount(a.targets).tolist() == [3] * len(CLASSES)
    assert np.asarray(a[0][0]).shape == (16, 16, 3)


def test_synthetic_split_sizes_and_transform():
    spec = DatasetSpec(kind="synthetic", synthetic_size=40)
    ds = build_dataset(spec, "unused", "test", transform=lambda im: torch.tensor(np.asarray(im)))
    assert len(ds) == 10 and ds[0][0].shape == (32, 32, 3)
