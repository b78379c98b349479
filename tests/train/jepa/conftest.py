"""Small files in the real CIFAR (python pickle), STL-10 (binary) and ImageNet (one folder of
images a class) formats, tiny configs.

torchvision's loaders check each file's MD5 against constants on the class; the fixtures
monkeypatch those constants to the tiny files' MD5s, so the real check still runs.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from torchvision import datasets as tvd

IMAGENET_CLASSES = ("n01440764", "n01443537")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(
    folder: Path, kind: str, n_train: int = 20, n_test: int = 10, seed: int = 0
) -> dict:
    """Write a tiny CIFAR-10/100 in torchvision's layout; return ``{file name: md5}``."""
    rng = np.random.default_rng(seed)
    base = folder / ("cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python")
    base.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if kind == "cifar10" else "fine_labels"
    classes = 10 if kind == "cifar10" else 100

    def batch(n: int) -> dict:
        return {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: [int(x) for x in rng.integers(0, classes, n)],
        }

    if kind == "cifar10":
        train_files = [f"data_batch_{i}" for i in range(1, 6)]
        files = {name: batch(n_train // 5) for name in train_files}
        files["test_batch"] = batch(n_test)
        meta_name, meta = "batches.meta", {"label_names": [f"c{i}" for i in range(10)]}
    else:
        files = {"train": batch(n_train), "test": batch(n_test)}
        meta_name, meta = "meta", {"fine_label_names": [f"c{i}" for i in range(100)]}
    for name, content in files.items():
        (base / name).write_bytes(pickle.dumps(content))
    (base / meta_name).write_bytes(pickle.dumps(meta))
    return {p.name: _md5(p) for p in base.iterdir()}


def write_stl10(folder: Path, n_train: int = 6, n_unlabeled: int = 4, n_test: int = 5) -> dict:
    """Tiny STL-10 binaries (uint8, column-major 3x96x96 images, labels 1..10)."""
    rng = np.random.default_rng(1)
    base = folder / "stl10_binary"
    base.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8).tofile(base / f"{name}_X.bin")
        (np.arange(n) % 10 + 1).astype(np.uint8).tofile(base / f"{name}_y.bin")
    rng.integers(0, 256, (n_unlabeled, 3, 96, 96), dtype=np.uint8).tofile(base / "unlabeled_X.bin")
    (base / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    return {p.name: _md5(p) for p in base.iterdir()}


def write_imagenet(
    data: Path, classes: Sequence[str] = IMAGENET_CLASSES, per_class: int = 8
) -> Path:
    """Tiny ``<data>/imagenet/{train,val}/<wnid>/*.JPEG``; returns the last train class folder."""
    for split in ("train", "val"):
        for c in classes:
            (data / "imagenet" / split / c).mkdir(parents=True)
            for i in range(per_class):
                image = Image.new("RGB", (20, 16), (i * 30, 0, 0))
                image.save(data / "imagenet" / split / c / f"{i}.JPEG")
    return data / "imagenet" / "train" / classes[-1]


def patch_md5s(monkeypatch: pytest.MonkeyPatch, kind: str, md5s: dict) -> None:
    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "stl10": tvd.STL10}[kind]
    for attr in ("train_list", "test_list"):
        entries = [[name, md5s[name]] for name, _ in getattr(cls, attr)]
        monkeypatch.setattr(cls, attr, entries)
    if kind != "stl10":
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5s[cls.meta["filename"]]})


def tar_gz(source: Path, arcname: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(source, arcname=arcname)
    return buf.getvalue()


def tiny_config(tmp_path: Path, **overrides) -> dict:  # noqa: ANN003
    """A raw config small enough to train a few steps in seconds."""
    cfg = {
        "name": "test",
        "data": {
            "data_path": str(tmp_path / "data"),
            "datasets": [{"kind": "synthetic", "synthetic_size": 48}],
            "image_size": 16,
            "num_workers": 0,
        },
        "mask": {"min_keep": 2},
        "model": {
            "patch_size": 2,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "predictor_embed_dim": 16,
            "predictor_depth": 1,
            "predictor_num_heads": 2,
            "levels": [{"weight": 1.0}, {"weight": 0.5}],
        },
        "optim": {"epochs": 2, "batch_size": 16, "warmup_epochs": 1},
        "collapse": {"probe_samples": 16},
        "run": {"out": str(tmp_path / "run"), "log_every": 1},
    }
    for section, values in overrides.items():
        cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
    return cfg


@pytest.fixture
def jepa_files() -> SimpleNamespace:
    """The builders above, for tests (pytest's importlib mode cannot import conftest)."""
    return SimpleNamespace(
        write_cifar=write_cifar,
        write_stl10=write_stl10,
        write_imagenet=write_imagenet,
        patch_md5s=patch_md5s,
        tar_gz=tar_gz,
        tiny_config=tiny_config,
    )


@pytest.fixture
def tiny_model_config():
    """A factory of 16 px configs with a one-block ViT: the model tests' common starting point."""
    from train.jepa.config import parse_config

    def make(patch_size: int = 2, levels: int | None = None, mask: dict | None = None):
        model = {
            "patch_size": patch_size,
            "embed_dim": 32,
            "depth": 1,
            "num_heads": 2,
            "predictor_embed_dim": 16,
            "predictor_depth": 1,
            "predictor_num_heads": 2,
        }
        if levels is not None:
            model["levels"] = [{"weight": 1.0}] * levels
        raw = {
            "name": "t",
            "data": {"datasets": [{"kind": "synthetic"}], "image_size": 16},
            "model": model,
        }
        if mask is not None:
            raw["mask"] = mask
        return parse_config(raw)

    return make
