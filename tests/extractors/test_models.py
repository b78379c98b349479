"""Every registered extractor, both presets, as timm tests its models.

A new extractor is covered the day it registers: forward shape and finiteness,
a backward that reaches every parameter, and (tiny preset) a multi-view model
that can overfit a small batch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from extractors import build_model, create_extractor, list_extractors
from extractors.config import PRESET_NAMES

# Small clips the contract allows; base presets get smaller ones still so the
# published widths stay fast on a CPU.
CLIP = {"tiny": (3, 8, 32, 32), "base": (3, 4, 16, 16)}
NAMES = list_extractors()


def test_builtin_extractors_are_registered():
    assert {"i3d", "slowfast", "transformer", "magvit"} <= set(NAMES)


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name: str, preset: str):
    torch.manual_seed(0)
    model = create_extractor(name, preset)
    model.train()
    clip = torch.randn(2, *CLIP[preset])

    emb = model(clip)

    assert isinstance(model.embed_dim, int)
    assert emb.shape == (2, model.embed_dim), f"{name}/{preset}: embedding {tuple(emb.shape)}"
    assert torch.isfinite(emb).all(), f"{name}/{preset}: non-finite embedding"
    loss = emb.pow(2).mean()
    aux = model.aux_loss() if hasattr(model, "aux_loss") else None
    if aux is not None:
        assert aux.dim() == 0 and torch.isfinite(aux), f"{name}/{preset}: bad aux loss {aux}"
        loss = loss + aux
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}/{preset}: no gradient reaches {missing}"
    bad = [
        n
        for n, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    assert not bad, f"{name}/{preset}: non-finite gradient in {bad}"


@pytest.mark.parametrize("name", NAMES)
def test_eval_forward_is_deterministic_for_other_clip_sizes(name: str):
    """The dataset's 32x64x64, other lengths (12 is not a multiple of SlowFast's
    alpha=4 times its stem stride), non-square frames; a second call must agree
    (SlowFast's fusion would corrupt a reused pathway list)."""
    model = create_extractor(name, "tiny").eval()
    for shape in [(3, 32, 64, 64), (3, 16, 32, 32), (3, 12, 32, 32), (3, 8, 48, 64)]:
        clip = torch.randn(1, *shape)
        with torch.no_grad():
            first, second = model(clip), model(clip)
        assert first.shape == (1, model.embed_dim), f"{name}: {shape} -> {tuple(first.shape)}"
        torch.testing.assert_close(first, second, msg=f"{name}: eval forward not deterministic")


@pytest.mark.parametrize("name", NAMES)
def test_multiview_model_overfits_sixteen_samples(name: str):
    """The tiny multi-view model must reach 100% training accuracy on 16 clips."""
    torch.manual_seed(0)
    videos = torch.randn(16, 4, *CLIP["tiny"])
    labels = torch.arange(16) % 4
    future = torch.randn(16, 3)
    model = build_model(name, "tiny", num_cameras=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.0)

    accuracy = 0.0
    for step in range(1, 101):  # all reach 100% by step 40 (seed 0); 100 leaves margin
        model.train()
        out = model(videos)
        loss = F.cross_entropy(out["logits"], labels) + F.mse_loss(out["future"], future)
        loss = loss + out.get("aux_loss", 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                accuracy = (model(videos)["logits"].argmax(1) == labels).float().mean().item()
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"{name}: training accuracy {accuracy:.2f} after {step} steps"
