from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from train.jepa.config import ConfigError, DatasetSpec, parse_config
from train.jepa.datasets import (
    ClassSubsetImageFolder,
    DamagedImage,
    DatasetMissing,
    build_dataset,
    imagenet100_classes,
)
from train.jepa.synthetic import (
    CLASSES,
    SHAPES,
    SyntheticImages,
    SyntheticShapes,
    SyntheticTextures,
    render_shapes,
)


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


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda b: b"", "no image format recognised"),
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b"GIF89a not really", "no image format recognised"),
    ],
    ids=["0 bytes", "truncated", "not an image"],
)
@pytest.mark.parametrize("kind", ["imagenet", "imagenet100"])
def test_an_image_that_does_not_decode_is_named(tmp_path, kind, damage, why):
    """PIL names no file for a truncated JPEG; the error must, and say what to do."""
    _image_folder(tmp_path / "imagenet", imagenet100_classes(), per_class=1)
    data = build_dataset(DatasetSpec(kind=kind), tmp_path, "train")
    path = Path(data.samples[3][0])
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    noisy.save(path, format="JPEG")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DamagedImage, match=why) as caught:
        data[3]
    assert str(caught.value).startswith(f"{path} is not a readable image (")
    assert str(caught.value).endswith("; replace or remove it")
    assert data[4][0].size == (20, 16)  # the others still read


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


@pytest.mark.parametrize("kind", ["textures", "shapes"])
def test_every_synthetic_kind_is_deterministic_balanced_and_split(kind):
    a = SyntheticImages(40, "train", image_size=32, seed=3, kind=kind)
    b = SyntheticImages(40, "train", image_size=32, seed=3, kind=kind)
    other_seed = SyntheticImages(40, "train", image_size=32, seed=4, kind=kind)
    test = SyntheticImages(40, "test", image_size=32, seed=3, kind=kind)
    image, label = a[13]
    assert np.array_equal(np.asarray(image), np.asarray(b[13][0]))
    assert not np.array_equal(np.asarray(image), np.asarray(test[13][0]))
    assert not np.array_equal(np.asarray(image), np.asarray(other_seed[13][0]))
    assert label == 3 and len(a.classes) == 10
    for prefix in (10, 20, 40):  # every whole cycle of a prefix is balanced
        assert np.bincount(a.targets[:prefix]).tolist() == [prefix // 10] * 10
    pixels = np.asarray(image)
    assert pixels.dtype == np.uint8 and pixels.shape == (32, 32, 3)
    with pytest.raises(IndexError):
        a[40]


def test_synthetic_kind_names_the_class_list():
    assert SyntheticShapes(10).classes == SHAPES and SyntheticTextures(10).classes == CLASSES
    assert SyntheticImages(10, kind="shapes").classes == SHAPES
    with pytest.raises(ValueError, match="synthetic kind"):
        SyntheticImages(10, kind="stars")


def test_shapes_differ_only_by_class_under_the_same_draws():
    """Same random numbers, different class: the objects sit in the same places with the same
    colours, so the images must differ, and by whole shapes, not by a few edge pixels."""
    images = [render_shapes(c, np.random.default_rng(7), 32).astype(float) for c in range(10)]
    for i in range(10):
        for j in range(i + 1, 10):
            differ = np.abs(images[i] - images[j]).max(-1) > 40
            assert differ.mean() > 0.02, (SHAPES[i], SHAPES[j])


def test_shapes_are_objects_on_a_background_without_image_wide_tint():
    """Objects stand out from the background, and the background carries no per-image level
    (an image-wide nuisance a JEPA would learn instead of the shapes)."""
    backgrounds = []
    for i in range(20):
        img = render_shapes(i % 10, np.random.default_rng([0, i]), 32).astype(float) / 255
        far = img.mean(-1) < 0.3  # object pixels: dark (<= 0.24) on mid-grey
        assert 0.05 < far.mean() < 0.7
        backgrounds.append(np.median(img[~far], axis=0))
    assert np.abs(np.array(backgrounds) - 0.5).max() < 0.04


def test_synthetic_kind_in_the_dataset_spec():
    spec = DatasetSpec(kind="synthetic", synthetic_size=20, synthetic_kind="shapes")
    test = build_dataset(spec, "unused", "test", image_size=32, seed=1)
    assert isinstance(test, SyntheticImages) and test.kind == "shapes" and len(test) == 5
    assert np.array_equal(
        np.asarray(test[2][0]), np.asarray(SyntheticShapes(5, "test", seed=1)[2][0])
    )
    assert DatasetSpec(kind="synthetic").synthetic_kind == "textures"
    raw = {"name": "t", "data": {"datasets": [{"kind": "synthetic", "synthetic_kind": "x"}]}}
    with pytest.raises(ConfigError, match="synthetic_kind"):
        parse_config(raw)


def test_digits_are_scikit_learns_real_images_in_a_fixed_stratified_split():
    from sklearn.datasets import load_digits

    spec = DatasetSpec(kind="digits")
    train = build_dataset(spec, "unused", "train")
    test = build_dataset(spec, "unused", "test")
    assert (len(train), len(test)) == (1437, 360)
    assert build_dataset(spec, "unused", "pretrain").labels.tolist() == train.labels.tolist()
    image, label = test[0]
    assert image.size == (8, 8) and image.mode == "RGB" and 0 <= label <= 9
    counts = np.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: 36 a class, give or take one
    # every image is one of the 1,797 originals, scaled 0..16 -> 0..255, and no image is in both
    originals = {
        tuple(np.round(x * 255 / 16).astype(np.uint8).ravel()) for x in load_digits().images
    }
    seen_train = {tuple(x.ravel()) for x in train.images}
    seen_test = {tuple(x.ravel()) for x in test.images}
    assert seen_train <= originals and seen_test <= originals
    assert len(seen_train & seen_test) <= 2  # the originals hold a few duplicate drawings


def test_a_new_dataset_is_one_entry_that_config_training_evaluation_and_download_all_see(
    tmp_path, monkeypatch, jepa_files, capsys
):
    """The registry is the one place: an entry there is a valid config kind, is built for
    every split from its folder, is an evaluation choice and is downloadable by its archive."""
    from torchvision import datasets as tvd

    from train.jepa import datasets, download, evaluate

    class Cifar10Copy(tvd.CIFAR10):
        """Stands for any new torchvision set: same archive format, its own folder and name."""

    entry = datasets.ImageSet(
        datasets._torchvision(Cifar10Copy, datasets.CIFAR_SPLITS), "copy", Cifar10Copy
    )
    monkeypatch.setitem(datasets.IMAGE_SETS, "cifar10copy", entry)
    md5s = jepa_files.write_cifar(tmp_path / "copy", "cifar10", n_train=20, n_test=10)
    jepa_files.patch_md5s(monkeypatch, "cifar10", md5s)
    monkeypatch.setattr(Cifar10Copy, "train_list", tvd.CIFAR10.train_list)
    monkeypatch.setattr(Cifar10Copy, "test_list", tvd.CIFAR10.test_list)

    spec = DatasetSpec(kind="cifar10copy")
    assert len(build_dataset(spec, tmp_path, "pretrain")) == 20
    assert len(build_dataset(spec, tmp_path, "test")) == 10
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'.*cifar10copy"):
        DatasetSpec(kind="cifar11")
    assert download.main(["cifar10copy", "--data-path", str(tmp_path), "--quiet"]) == 0
    assert "cifar10copy ready in" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a known choice: it fails later, on the missing --checkpoint
        evaluate.main(["--dataset", "cifar10copy"])
    assert "invalid choice" not in capsys.readouterr().err
