import math

import torch
from timm.models.vision_transformer import Block

from train.jepa.vision_transformer import (
    Predictor,
    VisionTransformer,
    apply_masks,
    repeat_interleave_batch,
    sincos_pos_embed_2d,
)


def test_sincos_matches_formula():
    dim, grid = 16, 4
    pe = sincos_pos_embed_2d(dim, grid)
    assert pe.shape == (16, dim)
    row, col, i = 2, 3, 1  # token (2, 3), frequency index 1
    w = 1 / 10000 ** (i / (dim / 4))
    token = pe[row * grid + col]
    assert math.isclose(token[i], math.sin(row * w), abs_tol=1e-6)  # row half: sin then cos
    assert math.isclose(token[dim // 4 + i], math.cos(row * w), abs_tol=1e-6)
    assert math.isclose(token[dim // 2 + i], math.sin(col * w), abs_tol=1e-6)  # column half
    assert len(torch.unique(pe, dim=0)) == grid * grid


def test_position_embeddings_are_fixed_buffers_and_blocks_are_timm():
    vit = VisionTransformer(16, 4, 32, 2, 2)
    assert "pos_embed" in dict(vit.named_buffers())
    assert "pos_embed" not in dict(vit.named_parameters())
    assert all(isinstance(b, Block) for b in vit.blocks)


def test_apply_masks_gathers_mask_major():
    x = torch.arange(2 * 5).float().reshape(2, 5, 1)
    masks = [torch.tensor([[0, 1], [2, 3]]), torch.tensor([[4, 4], [0, 0]])]
    out = apply_masks(x, masks).squeeze(-1)
    assert out.tolist() == [[0, 1], [7, 8], [4, 4], [5, 5]]


def test_repeat_interleave_batch():
    x = torch.arange(4).reshape(4, 1)  # two masks x batch 2
    assert repeat_interleave_batch(x, 2, 2).squeeze(1).tolist() == [0, 1, 0, 1, 2, 3, 2, 3]


def test_encoder_and_predictor_shapes():
    vit = VisionTransformer(16, 4, 32, 2, 2)
    images = torch.randn(3, 3, 16, 16)
    assert vit(images).shape == (3, 16, 32)
    ctx = [torch.tensor([[0, 1, 2, 5]] * 3)]
    tgt = [torch.tensor([[10, 11]] * 3), torch.tensor([[14, 15]] * 3)]
    context = vit(images, ctx)
    assert context.shape == (3, 4, 32)
    pred = Predictor(4, 32, 16, 1, 2)
    assert pred(context, ctx, tgt).shape == (6, 2, 16)


def test_patch_embedding_gets_the_ijepa_init():
    """ijepa ``_init_weights`` covers the patch embedding's Conv2d (trunc-normal 0.02, zero
    bias); PyTorch's default for a 4x4x3 patch would be about 4x wider."""
    torch.manual_seed(0)
    conv = VisionTransformer(32, 4, 96, 1, 3).patch_embed.proj
    assert isinstance(conv, torch.nn.Conv2d)
    assert abs(conv.weight.std().item() - 0.02) < 0.002  # PyTorch's default: 0.083
    assert torch.count_nonzero(conv.bias) == 0
