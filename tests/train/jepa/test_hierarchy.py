import pytest
import torch
import torch.nn.functional as F

from train.jepa.hierarchy import (
    LevelHeads,
    covered_cells,
    hierarchical_loss,
    level_targets,
    pool_grid,
)
from train.jepa.model import HJepa, forward_target, make_target_encoder
from train.jepa.vision_transformer import apply_masks


def test_pool_grid_averages_2d_groups_not_token_runs():
    grid = 4
    tokens = torch.arange(grid * grid).float().reshape(1, 16, 1)
    pooled = pool_grid(tokens, grid, 2).squeeze()
    # cell (0, 0) holds tokens 0, 1, 4, 5 (a 2x2 square), not 0..3 (a run of the token list)
    assert pooled.tolist() == [
        (0 + 1 + 4 + 5) / 4,
        (2 + 3 + 6 + 7) / 4,
        (8 + 9 + 12 + 13) / 4,
        (10 + 11 + 14 + 15) / 4,
    ]


def test_level_targets_are_layernormed_pools_without_grad():
    h = torch.randn(2, 64, 8, requires_grad=True)
    targets = level_targets(h, 8, 3)
    assert [t.shape for t in targets] == [(2, 64, 8), (2, 16, 8), (2, 4, 8)]
    assert torch.allclose(targets[0], F.layer_norm(h.detach(), (8,)))
    assert torch.allclose(targets[1], F.layer_norm(pool_grid(h.detach(), 8, 2), (8,)))
    assert all(t.grad_fn is None and not t.requires_grad for t in targets)


def test_covered_cells_counts_only_fully_covered_cells():
    grid = 8
    rows, cols = torch.meshgrid(torch.arange(1, 4), torch.arange(0, 4), indexing="ij")
    block = (rows * grid + cols).flatten().unsqueeze(0)  # rows 1-3, cols 0-3
    full1, _ = covered_cells([block], grid, 2)
    # level 1 (2x2 cells on a 4x4 cell grid): rows 2-3 x cols 0-1 and 2-3 -> cells (1,0), (1,1)
    assert torch.nonzero(full1[0]).flatten().tolist() == [4, 5]
    full2, _ = covered_cells([block], grid, 4)
    assert not full2.any()  # no 4x4 cell lies inside a 3-row block


def _square_masks(batch: int):
    grid = 8
    rows, cols = torch.meshgrid(torch.arange(0, 4), torch.arange(4, 8), indexing="ij")
    tgt = (rows * grid + cols).flatten().expand(batch, -1)  # a 4x4 block: one level-2 cell
    ctx = torch.arange(32, 64).expand(batch, -1)  # bottom half
    return [ctx], [tgt, tgt.flip(0)]


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_hierarchy_shapes_and_gradients(levels, tiny_model_config):
    torch.manual_seed(0)
    cfg = tiny_model_config(levels=levels, mask={"min_keep": 2})
    model = HJepa(cfg)
    target = make_target_encoder(model.encoder)
    images = torch.randn(2, 3, 16, 16)
    ctx, tgt = _square_masks(2)
    targets, _ = forward_target(target, images, levels)
    assert [t.shape[1] for t in targets] == [64, 16, 4][:levels]
    total, losses, cells, reg = model(images, ctx, tgt, targets)
    assert reg.item() == 0.0  # no regulariser configured
    assert len(losses) == levels and torch.isfinite(total)
    # 2 blocks x 2 images; each 4x4 block holds 16 patches, 4 level-1 cells, 1 level-2 cell
    assert cells == [64, 16, 4][:levels]
    total.backward()
    for k in range(levels):
        assert model.heads.heads[k].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in target.parameters())


def test_one_level_is_plain_ijepa(tiny_model_config):
    torch.manual_seed(0)
    model = HJepa(tiny_model_config(levels=1, mask={"min_keep": 2}))
    target = make_target_encoder(model.encoder)
    images = torch.randn(2, 3, 16, 16)
    ctx, tgt = _square_masks(2)
    targets, h = forward_target(target, images, 1)
    total, _, _, _ = model(images, ctx, tgt, targets)
    z = model.heads.heads[0](model.predictor(model.encoder(images, ctx), ctx, tgt))
    expected = F.smooth_l1_loss(z, apply_masks(F.layer_norm(h, (32,)), tgt))
    assert torch.allclose(total, expected)


def test_unreachable_level_adds_zero_but_keeps_head_in_graph():
    heads = LevelHeads(2, 4, 6)
    hidden = torch.randn(1, 3, 4, requires_grad=True)
    tgt = [torch.tensor([[0, 1, 2]])]  # a 1x3 row covers no 2x2 cell
    targets = level_targets(torch.randn(1, 16, 6), 4, 2)
    total, losses, cells = hierarchical_loss(
        hidden, heads, targets, [torch.tensor([[5]])], tgt, 4, [1.0, 1.0]
    )
    assert cells == [3, 0] and losses[1].item() == 0.0
    total.backward()
    assert heads.heads[1].weight.grad is not None
