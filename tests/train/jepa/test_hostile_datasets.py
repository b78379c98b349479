"""Hostile files in the image sets: each is one line naming it (exit 2, as a missing dataset),
never a hang, a traceback or PIL's warnings on stderr."""

import os
import re
import warnings

import pytest
import yaml
from PIL import Image
from torchvision import datasets as tvd

from tests.train.jepa.conftest import write_imagenet
from train.jepa import train as trainer
from train.jepa.config import DatasetSpec
from train.jepa.datasets import (
    DamagedImage,
    DatasetMissing,
    build_dataset,
    imagenet100_classes,
    read_image,
)


def _train(tmp_path, jepa_files, capsys) -> tuple[int, str]:
    raw = jepa_files.tiny_config(
        tmp_path,
        data={"datasets": [{"kind": "imagenet"}]},
        optim={"epochs": 1, "batch_size": 8, "warmup_epochs": 0},
    )
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    code = trainer.main(["--config", str(config), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return code, err


@pytest.mark.timeout(20)  # the FIFO's open blocked for ever
def test_a_fifo_named_like_an_image_is_one_line(tmp_path, jepa_files, capsys):
    fifo = write_imagenet(tmp_path / "data") / "b.JPEG"
    os.mkfifo(fifo)
    code, err = _train(tmp_path, jepa_files, capsys)
    assert code == 2
    assert err == f"error: {fifo} is not a regular file (a FIFO, device or broken link); " + (
        "replace or remove it"
    )


@pytest.mark.timeout(20)  # torchvision's walk of the two loops is 2^40 paths
def test_symbolic_link_loops_in_a_class_folder_are_one_line(tmp_path, jepa_files, capsys):
    folder = write_imagenet(tmp_path / "data")
    for name in ("x", "y"):
        (folder / name).symlink_to(".")
    code, err = _train(tmp_path, jepa_files, capsys)
    assert code == 2
    assert err == (
        f"error: {folder}/x leads back to {folder}, a folder it is in (a symbolic link loop); "
        "remove the link"
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["imagenet", "imagenet100"])
@pytest.mark.parametrize(
    "plant, named",
    [
        (lambda f: (f / "up").symlink_to("../.."), "up leads back to"),  # to the dataset root
        (lambda f: (f / "a.JPEG").symlink_to("a.JPEG"), "a.JPEG"),  # a link to itself
        (lambda f: (f / "gone.png").symlink_to("nowhere.png"), "gone.png"),
    ],
    ids=["loop above", "link to itself", "dangling link"],
)
def test_every_split_and_imagenet100_refuse_links_that_lead_nowhere(tmp_path, kind, plant, named):
    wnids = imagenet100_classes()
    write_imagenet(tmp_path, wnids, per_class=1)
    folder = tmp_path / "imagenet" / "val" / wnids[7]
    plant(folder)
    with pytest.raises(DatasetMissing, match="^" + re.escape(f"{folder}/{named} ")):
        build_dataset(DatasetSpec(kind=kind), tmp_path, "test")


def test_links_to_images_and_to_other_folders_are_followed_in_torchvision_s_order(tmp_path):
    folder = write_imagenet(tmp_path, per_class=2)
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(elsewhere / "z.png")
    (folder / "linked.JPEG").symlink_to(folder / "0.JPEG")
    (folder / "sub").symlink_to(tmp_path / "elsewhere")
    (folder / "sub-a").mkdir()
    Image.new("RGB", (8, 8)).save(folder / "sub-a" / "y.png")
    data = build_dataset(DatasetSpec(kind="imagenet"), tmp_path, "train")
    assert data.samples == tvd.ImageFolder(str(tmp_path / "imagenet" / "train")).samples
    assert {f"{folder}/linked.JPEG", f"{folder}/sub/deeper/z.png"} <= {p for p, _ in data.samples}


def test_a_class_folder_without_images_is_named(tmp_path):
    folder = write_imagenet(tmp_path, per_class=1)
    (folder / "0.JPEG").unlink()
    (folder / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetMissing, match=f"^{folder} holds no image file"):
        build_dataset(DatasetSpec(kind="imagenet"), tmp_path, "train")


@pytest.mark.parametrize("side", [40, 50], ids=["above the limit: PIL warns", "twice: PIL fails"])
def test_a_decompression_bomb_is_a_damaged_image_without_warnings(tmp_path, monkeypatch, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL fails above 2000 pixels
    path = tmp_path / "bomb.png"
    Image.new("L", (side, side)).save(path)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(DamagedImage) as caught:
            read_image(str(path))
    assert not shown, [str(w.message) for w in shown]
    assert str(caught.value).startswith(
        f"{path} is not a readable image (Image size ({side * side} pixels) exceeds limit"
    )
    Image.new("L", (30, 30)).save(path)  # below the limit: read as before
    assert read_image(str(path)).size == (30, 30)


@pytest.mark.parametrize("dtype, suffix", [("uint16", ".png"), ("float32", ".tiff")])
def test_an_image_of_more_than_8_bits_a_sample_is_a_damaged_image(tmp_path, dtype, suffix):
    """PIL's conversion to RGB clipped it to white (16-bit) or black (float), unsaid; the
    saliency reader refused it already."""
    import numpy as np

    path = tmp_path / f"deep{suffix}"
    Image.fromarray(np.full((16, 20), 20_000, dtype=dtype)).save(path)
    with pytest.raises(DamagedImage, match=r"-bit \S+ samples; convert it to 8-bit"):
        read_image(str(path))


def test_a_decompression_bomb_in_training_is_one_line(tmp_path, jepa_files, capsys, monkeypatch):
    folder = write_imagenet(tmp_path / "data")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("L", (50, 50)).save(folder / "3.JPEG")
    code, err = _train(tmp_path, jepa_files, capsys)
    assert code == 2
    assert err.startswith(f"error: {folder}/3.JPEG is not a readable image (Image size"), err


def test_stl10_class_names_that_are_not_utf8_are_named(tmp_path, monkeypatch, jepa_files):
    md5s = jepa_files.write_stl10(tmp_path / "stl10")
    jepa_files.patch_md5s(monkeypatch, "stl10", md5s)  # class_names.txt has no MD5 to check
    names = tmp_path / "stl10" / "stl10_binary" / "class_names.txt"
    names.write_bytes(b"airplane\n\xff\xfe bird\n")
    with pytest.raises(DatasetMissing) as caught:
        build_dataset(DatasetSpec(kind="stl10"), tmp_path, "train")
    assert str(caught.value) == (
        f"stl10 not usable at {tmp_path / 'stl10'} ({names} is not UTF-8 text); run "
        f"`python -m train.jepa.download stl10 --data-path {tmp_path}`"
    )


@pytest.mark.timeout(60)
def test_links_that_branch_without_a_loop_are_one_line(tmp_path, monkeypatch):
    """Two links a level to the next level, 26 levels down: 2^26 paths and no loop, so the
    walk ran for ever (torchvision's as well)."""
    import train.jepa.datasets as datasets

    monkeypatch.setattr(datasets, "MAX_FOLDERS", 1_000)  # the same rule, met sooner
    folder = write_imagenet(tmp_path)
    for level in range(26):
        (folder / f"L{level}").mkdir()
    for level in range(25):
        for name in ("a", "b"):
            (folder / f"L{level}" / name).symlink_to(f"../L{level + 1}")
    with pytest.raises(DatasetMissing, match="more than 1,000 folders, counted through its links"):
        datasets.image_paths(str(folder), lambda path: path.endswith(".JPEG"))
