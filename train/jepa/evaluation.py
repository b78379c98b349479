"""Frozen target-encoder features, measured three ways (the protocol behind
``python -m train.jepa.evaluate`` and ``benchmarks/bench_jepa.py``).

Features: the target encoder's output tokens averaged over the image (I-JEPA's evaluation uses
the average-pooled last layer), evaluation transform (resize, centre crop, normalise).

* linear probe: logistic regression trained on the train split, accuracy on the test split;
* weighted k-NN: k=20, cosine similarity, temperature 0.07 (Wu et al. 2018; DINO);
* RankMe (Garrido et al. 2023) of the train-split features.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from train.jepa.checkpoints import load_run_checkpoint, load_weights
from train.jepa.config import DatasetSpec, JepaConfig
from train.jepa.datasets import build_dataset
from train.jepa.probes import knn_correct, linear_probe_accuracy, rankme
from train.jepa.transforms import eval_transform
from train.jepa.vision_transformer import VisionTransformer
from trajkit.cli import leave_stops_to_main_process
from trajkit.dataloader import DataLoader


class RawPixels(nn.Module):
    """The evaluation-transformed image itself as one token: the floor a representation must
    beat (a k-NN or a linear probe on pixels needs no pretraining)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1).unsqueeze(1)


@torch.no_grad()
def extract_features(
    encoder: nn.Module, dataset: Dataset, batch_size: int = 256, num_workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, D)`` mean-pooled features and ``(N,)`` labels of a labelled dataset."""
    encoder.eval()
    device = next(encoder.parameters(), torch.empty(0)).device
    feats, labels = [], []
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        worker_init_fn=leave_stops_to_main_process,
    )
    for images, y in loader:
        feats.append(encoder(images.to(device)).float().mean(1).cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels).long()


def load_encoder(
    checkpoint: str | Path | None, cfg: JepaConfig, seed: int = 0
) -> VisionTransformer:
    """The checkpoint's target encoder, or (``checkpoint=None``) the same network at random init."""
    m = cfg.model
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = VisionTransformer(
            cfg.data.image_size, m.patch_size, m.embed_dim, m.depth, m.num_heads, m.mlp_ratio
        )
    if checkpoint is not None:
        path = Path(checkpoint)
        state = load_run_checkpoint(path, ("target_encoder",))
        load_weights(encoder, state["target_encoder"], path, "target encoder")
    return encoder


def eval_datasets(cfg: JepaConfig, spec: DatasetSpec, data_path: str) -> dict[str, Dataset]:
    """The train and test splits with the evaluation transform, read lazily."""
    transform = eval_transform(cfg.data)
    return {
        split: build_dataset(spec, data_path, split, transform, cfg.data.image_size, cfg.run.seed)
        for split in ("train", "test")
    }


def eval_splits(
    cfg: JepaConfig, spec: DatasetSpec, data_path: str, num_workers: int = 0
) -> dict[str, TensorDataset]:
    """``eval_datasets`` held in memory: decoded (or, for the synthetic sets, drawn) once for
    all the encoders measured on them. For the small sets of the benchmark (~90 MB each)."""
    splits = {}
    for split, dataset in eval_datasets(cfg, spec, data_path).items():
        batches = DataLoader(
            dataset,
            batch_size=256,
            num_workers=num_workers,
            worker_init_fn=leave_stops_to_main_process,
        )
        images, labels = zip(*batches, strict=True)
        splits[split] = TensorDataset(torch.cat(images), torch.cat(labels).long())
    return splits


def evaluate(
    encoder: nn.Module,
    cfg: JepaConfig,
    spec: DatasetSpec,
    data_path: str,
    k: int = 20,
    temperature: float = 0.07,
    probe_iters: int = 500,
    batch_size: int = 256,
    num_workers: int = 0,
    keep_knn_correct: bool = False,
    splits: dict[str, Dataset] | None = None,
) -> dict:
    """The measures as a JSON-ready dict; ``keep_knn_correct`` adds the test split's per-image
    k-NN outcomes (a bool tensor, for paired comparisons between encoders). ``splits`` (from
    ``eval_splits``) saves building the images again for each encoder; by default they are
    read lazily (``eval_datasets``)."""
    if splits is None:
        splits = eval_datasets(cfg, spec, data_path)
    (x_tr, y_tr), (x_te, y_te) = (
        extract_features(encoder, splits[s], batch_size, num_workers) for s in ("train", "test")
    )
    correct = knn_correct(x_tr, y_tr, x_te, y_te, k=k, temperature=temperature)
    result = {
        "dataset": spec.kind,
        "train_samples": len(y_tr),
        "test_samples": len(y_te),
        "feature_dim": x_tr.size(1),
        "num_classes": int(max(y_tr.max(), y_te.max())) + 1,
        "linear_probe_accuracy": linear_probe_accuracy(
            x_tr, y_tr, x_te, y_te, max_iter=probe_iters
        ),
        "knn_accuracy": float(correct.float().mean()),
        "knn_k": min(k, len(y_tr)),  # the k used: at most every training sample votes
        "knn_temperature": temperature,
        "rankme": rankme(x_tr),
    }
    if keep_knn_correct:
        result["knn_correct"] = correct
    return result


def summary_line(result: dict) -> str:
    return (
        f"{result['dataset']}: linear probe {result['linear_probe_accuracy']:.4f}, "
        f"{result['knn_k']}-NN {result['knn_accuracy']:.4f}, RankMe {result['rankme']:.1f} "
        f"(train {result['train_samples']}, test {result['test_samples']}, dim {result['feature_dim']})"
    )
