"""Synthetic images are drawn once and kept, and training sees exactly what redrawing gave."""

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import get_worker_info

import train.jepa.synthetic as synthetic
from train.jepa.config import parse_config
from train.jepa.data_pipeline import build_pretrain_data, epoch_loader
from train.jepa.synthetic import SyntheticImages
from train.jepa.train import train

SHAPES_DATA = {
    "datasets": [{"kind": "synthetic", "synthetic_kind": "shapes", "synthetic_size": 48}]
}


@pytest.fixture
def draws(monkeypatch):
    """Counts the shapes renderer's calls (in this process)."""
    calls = []
    real = synthetic.RENDERERS["shapes"]

    def counting(label, rng, size):  # noqa: ANN001, ANN202
        calls.append(label)
        return real(label, rng, size)

    monkeypatch.setitem(synthetic.RENDERERS, "shapes", counting)
    return calls


def test_each_image_is_drawn_once_and_equals_a_redrawn_one(draws):
    kept = SyntheticImages(30, "train", image_size=24, seed=5, kind="shapes")
    redrawn = SyntheticImages(30, "train", image_size=24, seed=5, kind="shapes", cache=False)
    assert kept.cached and not redrawn.cached
    order = list(range(29, -1, -3)) + list(range(30)) + list(range(30))  # any order, repeats
    for i in order:
        assert np.array_equal(np.asarray(kept[i][0]), np.asarray(redrawn[i][0])), i
    assert len(draws) == 30 + len(order)  # kept: 30 draws; redrawn: one per access
    for bad in (-1, 30):
        with pytest.raises(IndexError):
            kept[bad]


def test_a_dataset_over_the_memory_cap_is_redrawn(draws, monkeypatch):
    monkeypatch.setattr(synthetic, "CACHE_MAX_BYTES", 10 * 8 * 8 * 3 - 1)
    over = SyntheticImages(10, image_size=8, kind="shapes")
    assert not over.cached
    over[3], over[3]
    over.draw_all()  # nothing to keep: draws nothing
    assert len(draws) == 2
    monkeypatch.setattr(synthetic, "CACHE_MAX_BYTES", 10 * 8 * 8 * 3)
    at_cap = SyntheticImages(10, image_size=8, kind="shapes")
    at_cap.draw_all()
    at_cap[3]
    assert at_cap.cached and len(draws) == 2 + 10


def _first_batches(cfg) -> list[torch.Tensor]:  # noqa: ANN001
    mixture, sampler, collator = build_pretrain_data(cfg)
    batches = []
    for epoch in (0, 1):
        torch.manual_seed((cfg.run.seed * 7919 + epoch) * 131)  # as the trainer seeds an epoch
        (images, _), _, _ = next(iter(epoch_loader(cfg, mixture, sampler, collator, epoch)))
        batches.append(images)
    return batches


@pytest.mark.parametrize("workers", [0, 2])
def test_first_batches_of_each_epoch_equal_redrawing(tmp_path, jepa_files, monkeypatch, workers):
    """Same crops of the same images in every epoch, with or without loader workers."""
    cfg = parse_config(
        jepa_files.tiny_config(tmp_path, data={**SHAPES_DATA, "num_workers": workers})
    )
    kept = _first_batches(cfg)
    monkeypatch.setattr(synthetic, "CACHE_MAX_BYTES", 0)  # every access redraws, as before
    redrawn = _first_batches(cfg)
    assert not torch.equal(kept[0], kept[1])  # the crops are drawn anew each epoch
    for a, b in zip(kept, redrawn, strict=True):
        assert torch.equal(a, b)


@pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork", reason="workers must inherit the patch"
)
def test_loader_workers_inherit_the_images_instead_of_drawing(tmp_path, jepa_files, monkeypatch):
    real = synthetic.RENDERERS["shapes"]

    def parent_only(label, rng, size):  # noqa: ANN001, ANN202
        if get_worker_info() is not None:
            raise AssertionError("a loader worker drew an image")
        return real(label, rng, size)

    monkeypatch.setitem(synthetic.RENDERERS, "shapes", parent_only)
    cfg = parse_config(jepa_files.tiny_config(tmp_path, data={**SHAPES_DATA, "num_workers": 2}))
    assert len(_first_batches(cfg)) == 2


def _one_epoch(cfg) -> tuple[list[dict], dict]:  # noqa: ANN001
    train(cfg, quiet=True)
    out = Path(cfg.run.out)
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("images_per_second", None)
    return records, torch.load(out / "last.pt", weights_only=True)["student"]


def test_one_epoch_of_pretraining_equals_redrawing(tmp_path, jepa_files, monkeypatch):
    def cfg(name: str):  # noqa: ANN202
        raw = jepa_files.tiny_config(tmp_path / name, data=SHAPES_DATA, optim={"epochs": 1})
        return parse_config(raw)

    kept_log, kept_weights = _one_epoch(cfg("kept"))
    monkeypatch.setattr(synthetic, "CACHE_MAX_BYTES", 0)
    redrawn_log, redrawn_weights = _one_epoch(cfg("redrawn"))
    assert [r["loss"] for r in kept_log if "loss" in r] == [
        r["loss"] for r in redrawn_log if "loss" in r
    ]
    assert kept_log == redrawn_log
    for name, value in kept_weights.items():
        assert torch.equal(value, redrawn_weights[name]), name
