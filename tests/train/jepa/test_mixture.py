import pytest
import torch

from train.jepa.mixture import MixtureDataset, MixtureSampler, draw_indices


def _which(idx, sizes):
    bounds = torch.tensor(sizes).cumsum(0)
    return torch.bucketize(idx, bounds, right=True)


def test_weighted_proportions_follow_weights_not_sizes():
    sizes, weights = [100, 1000, 10], [0.6, 0.3, 0.1]
    idx = draw_indices(sizes, weights, "weighted", 20000, torch.Generator().manual_seed(0))
    share = torch.bincount(_which(idx, sizes), minlength=3).float() / len(idx)
    assert torch.allclose(share, torch.tensor(weights), atol=0.015), share


def test_balanced_draws_equal_counts_without_repeats_when_possible():
    sizes = [50, 200, 7]
    idx = draw_indices(sizes, [1, 1, 1], "balanced", 30, torch.Generator().manual_seed(0))
    counts = torch.bincount(_which(idx, sizes), minlength=3)
    assert counts.tolist() == [10, 10, 10]
    first = idx[_which(idx, sizes) == 0]
    assert len(first.unique()) == 10  # no repeats from a dataset with enough images
    small = idx[_which(idx, sizes) == 2]
    assert set(small.tolist()) == set(range(250, 257))  # all 7 used before any repeats


def test_concat_visits_every_sample_once():
    sizes = [5, 3]
    idx = draw_indices(sizes, [1, 1], "concat", 8, torch.Generator().manual_seed(0))
    assert sorted(idx.tolist()) == list(range(8))


def test_sampler_is_epoch_seeded_and_sharded():
    s0 = MixtureSampler([40, 60], [1, 1], "weighted", seed=1, rank=0, world_size=2)
    s1 = MixtureSampler([40, 60], [1, 1], "weighted", seed=1, rank=1, world_size=2)
    full = MixtureSampler([40, 60], [1, 1], "weighted", seed=1)
    assert len(s0) == 50
    assert torch.equal(torch.stack([s0.indices(), s1.indices()], 1).flatten(), full.indices())
    first = full.indices()
    full.set_epoch(1)
    assert not torch.equal(first, full.indices())
    full.set_epoch(0)
    assert torch.equal(first, full.indices())


def test_mixture_dataset_returns_dataset_id():
    mix = MixtureDataset([[("a", 0)] * 2, [("b", 1)] * 3], ["x", "y"])
    assert len(mix) == 5 and mix[1] == ("a", 0) and mix[2] == ("b", 1) and mix[4] == ("b", 1)


def test_unknown_strategy():
    with pytest.raises(ValueError, match="strategy"):
        draw_indices([1], [1], "random", 1, torch.Generator())
