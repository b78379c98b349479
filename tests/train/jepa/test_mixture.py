import pytest
import torch
import yaml

from train.jepa.config import check_sampling, parse_config
from train.jepa.mixture import MixtureDataset, MixtureSampler, draw_indices
from train.jepa.train import main


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


@pytest.mark.parametrize(
    "weights, expected",
    [
        ([5e-324, 5e-324], [0.5, 0.5]),
        ([1e308, 1e308], [0.5, 0.5]),
        ([1e308, 5e307], [2 / 3, 1 / 3]),
    ],
    ids=["underflow", "overflow", "huge"],
)
def test_weighted_shares_survive_extreme_weights(weights, expected):
    """5e-324 / n underflowed to 0 (multinomial's traceback); 1e308 + 1e308 overflowed to inf,
    which gave the first dataset no draw at all."""
    sizes = [40, 40]
    idx = draw_indices(sizes, weights, "weighted", 20000, torch.Generator().manual_seed(0))
    share = torch.bincount(_which(idx, sizes), minlength=2).double() / len(idx)
    assert torch.allclose(share, torch.tensor(expected, dtype=torch.float64), atol=0.015), share


def test_balanced_draws_fewer_samples_than_datasets():
    sizes = [4, 5, 6]
    idx = draw_indices(sizes, [1, 1, 1], "balanced", 2, torch.Generator().manual_seed(0))
    assert sorted(_which(idx, sizes).tolist()) == [0, 1]


@pytest.mark.parametrize("strategy", ["concat", "balanced"])
def test_repeated_passes_are_whole_permutations(strategy):
    sizes = [1, 2]
    idx = draw_indices(sizes, [1, 1], strategy, 3000, torch.Generator().manual_seed(0))
    if strategy == "concat":
        assert all(sorted(idx[i : i + 3].tolist()) == [0, 1, 2] for i in range(0, 3000, 3))
    assert torch.bincount(idx).tolist() == (
        [1000] * 3 if strategy == "concat" else [1500, 750, 750]
    )


def test_iteration_yields_every_index_of_the_epoch_in_order():
    sampler = MixtureSampler([40, 60], [1, 2], "weighted", num_samples=200_000, seed=3)
    assert list(sampler) == sampler.indices().tolist()


def test_samples_per_epoch_is_bounded_by_what_an_epoch_can_draw(tmp_path, jepa_files, capsys):
    """1e14 hung building permutations (concat) or said to lower the batch size (weighted)."""
    import yaml

    from train.jepa import train as trainer
    from train.jepa.config import MAX_SAMPLES_PER_EPOCH, parse_config

    data = {"sampling": "weighted", "samples_per_epoch": MAX_SAMPLES_PER_EPOCH}
    assert parse_config(jepa_files.tiny_config(tmp_path, data=data))
    config = tmp_path / "c.yaml"
    data["samples_per_epoch"] = 10**14
    config.write_text(yaml.safe_dump(jepa_files.tiny_config(tmp_path, data=data)))
    assert trainer.main(["--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: invalid config: data.samples_per_epoch: Input should be less than or equal to "
        "100000000\n"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("sampling", ["concat", "balanced"])
def test_weights_a_sampling_ignores_are_refused_in_one_line(tmp_path, jepa_files, capsys, sampling):
    """Weights 1:3 under concat drew 64/32 (by size), under balanced 48/48, without a word."""
    datasets = [
        {"kind": "synthetic", "synthetic_size": 64},
        {"kind": "synthetic", "synthetic_size": 32, "weight": 3},
    ]
    raw = jepa_files.tiny_config(tmp_path, data={"datasets": datasets, "sampling": sampling})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"error: data.datasets[1].weight is 3, but data.sampling {sampling} ignores weights; "
        "set data.sampling: weighted or drop it\n"
    )
    assert not (tmp_path / "run").exists()
    check_sampling(parse_config({**raw, "data": {**raw["data"], "sampling": "weighted"}}))
    datasets[1]["weight"] = 1.0
    check_sampling(parse_config(raw))


def test_a_resume_that_finds_no_run_refuses_ignored_weights_as_a_start_does(
    tmp_path, jepa_files, capsys, monkeypatch
):
    """--resume on a folder without last.pt started from epoch 1 unchecked: weights 1:3 under
    concat trained by size without a word. A run begun before the check still resumes."""
    from train.jepa import train as trainer

    datasets = [
        {"kind": "synthetic", "synthetic_size": 32},
        {"kind": "synthetic", "synthetic_size": 16, "weight": 3},
    ]
    path = tmp_path / "c.yaml"

    def resume(epochs: int) -> int:
        data = {"datasets": datasets, "sampling": "concat"}
        path.write_text(
            yaml.safe_dump(jepa_files.tiny_config(tmp_path, data=data, optim={"epochs": epochs}))
        )
        return main(["--config", str(path), "--quiet", "--resume"])

    assert resume(1) == 2
    assert capsys.readouterr().err == (
        "error: data.datasets[1].weight is 3, but data.sampling concat ignores weights; "
        "set data.sampling: weighted or drop it\n"
    )
    assert not (tmp_path / "run").exists()
    with monkeypatch.context() as before_the_check:
        before_the_check.setattr(trainer, "check_sampling", lambda cfg: None)
        assert resume(1) == 0
    assert resume(2) == 0
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["epoch"] == 2 and last["config"]["data"]["datasets"][1]["weight"] == 3
