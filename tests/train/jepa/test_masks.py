import numpy as np
import pytest
import torch

from train.jepa.masks import MultiBlockMaskCollator, sample_block_size


def _collator(**kw):
    args = dict(grid=14, num_context=1, num_targets=4, min_keep=10)
    args.update(kw)
    return MultiBlockMaskCollator(**args)


def _draw(collator, batch=8, seed=0):
    return collator.sample_masks(batch, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", range(5))
def test_counts_shapes_and_index_ranges(seed):
    c = _collator()
    ctx, tgt = _draw(c, batch=8, seed=seed)
    assert len(ctx) == 1 and len(tgt) == 4
    for m in ctx + tgt:
        assert m.shape[0] == 8 and m.dtype == torch.long
        assert int(m.min()) >= 0 and int(m.max()) < 14 * 14
        for row in m:  # sorted, no duplicates
            assert torch.equal(row, row.unique())


@pytest.mark.parametrize("seed", range(5))
def test_targets_are_rectangles_of_one_size_per_batch(seed):
    ctx, tgt = _draw(_collator(), seed=seed)
    sizes = {m.shape[1] for m in tgt}
    assert len(sizes) == 1
    for m in tgt:
        for row in m:
            r, c = row // 14, row % 14
            box = (int(r.max() - r.min()) + 1) * (int(c.max() - c.min()) + 1)
            assert box == len(row), "target block is not a full rectangle"


@pytest.mark.parametrize("seed", range(10))
def test_targets_disjoint_from_context_and_min_keep(seed):
    ctx, tgt = _draw(_collator(min_keep=10), batch=16, seed=seed)
    assert ctx[0].shape[1] >= 10
    for b in range(16):
        context = set(ctx[0][b].tolist())
        for m in tgt:
            assert context.isdisjoint(m[b].tolist())


def test_block_scales_and_aspects_stay_in_range():
    g = torch.Generator().manual_seed(0)
    grid = 64  # large grid: rounding moves the realised scale and aspect very little
    for _ in range(300):
        size = sample_block_size(grid, (0.15, 0.2), (0.75, 1.5), g)
        scale = size.height * size.width / grid**2
        assert 0.15 * 0.95 <= scale <= 0.2 * 1.05
        assert 0.75 * 0.95 <= size.height / size.width <= 1.5 * 1.05


def test_scale_and_aspect_are_drawn_independently():
    """I-JEPA draws both from one number: their rank correlation would then be ~1."""
    g = torch.Generator().manual_seed(1)
    sizes = [sample_block_size(128, (0.15, 0.2), (0.75, 1.5), g) for _ in range(500)]
    area = np.array([s.height * s.width for s in sizes], dtype=float)
    aspect = np.array([s.height / s.width for s in sizes])
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    rho = np.corrcoef(rank(area), rank(aspect))[0, 1]
    assert abs(rho) < 0.15, rho


def test_context_scale_and_truncation_to_shortest():
    c = _collator(num_targets=1, target_scale=(0.1, 0.1), context_scale=(0.85, 1.0))
    ctx, tgt = _draw(c, batch=32, seed=3)
    # a context block of >= 85% of the grid minus one ~10% target keeps >= ~70% of tokens
    assert ctx[0].shape[1] >= 0.7 * 196
    assert ctx[0].shape[1] <= 196 - tgt[0].shape[1]


def test_same_seed_same_masks_and_collate_shapes():
    c = _collator()
    a, b = _draw(c, seed=7), _draw(c, seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1], strict=True))
    images, ctx, tgt = c([(torch.zeros(3, 8, 8), 1) for _ in range(4)])
    assert images[0].shape == (4, 3, 8, 8) and ctx[0].shape[0] == 4 and len(tgt) == 4


def test_impossible_min_keep_fails_clearly():
    c = _collator(grid=4, min_keep=16, max_tries=3)
    with pytest.raises(RuntimeError, match="min_keep"):
        _draw(c)
