"""``make bench-jepa`` end to end on a seconds-long config, and its verdict rules."""

import argparse
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from train.jepa.config import parse_config
from train.jepa.datasets import build_dataset
from train.jepa.evaluation import evaluate, load_encoder
from train.jepa.probes import knn_correct, mcnemar_greater
from train.jepa.transforms import eval_transform

ROOT = Path(__file__).resolve().parents[3]


def _bench():
    # imported by name (the repository root is on the path), so the spawned workers can too
    return importlib.import_module("benchmarks.bench_jepa")


@pytest.mark.slow  # 34 s: two pretraining runs, each scored again here
def test_bench_measures_each_seed_against_random_init_and_raw_pixels(tmp_path, jepa_files, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(jepa_files.tiny_config(tmp_path, optim={"epochs": 1})))
    out = tmp_path / "bench"
    argv = ["--configs", str(config), "--out", str(out), "--seeds", "0", "3", "--jobs", "2"]
    # a margin no run can reach: the verdict must fail, and say why
    assert _bench().main([*argv, "--margin", "2"]) == 1
    report = json.loads((out / "bench.json").read_text())
    (result,) = report["configs"]
    assert [run["seed"] for run in result["runs"]] == [0, 3]
    for run in result["runs"]:
        # measured again here, independently of the benchmark's own bookkeeping
        last = out / "tiny" / f"seed{run['seed']}" / "last.pt"
        cfg = parse_config(torch.load(last, weights_only=True)["config"])
        assert cfg.run.seed == run["seed"]
        spec, path = cfg.data.datasets[0], cfg.data.data_path
        pretrained = evaluate(load_encoder(last, cfg, cfg.run.seed), cfg, spec, path)
        random_init = evaluate(load_encoder(None, cfg, cfg.run.seed), cfg, spec, path)
        assert run["pretrained"]["knn_accuracy"] == pretrained["knn_accuracy"]
        assert run["pretrained"]["rankme"] == pytest.approx(pretrained["rankme"])
        assert run["random_init"]["knn_accuracy"] == random_init["knn_accuracy"]
        assert run["knn_gain"] == pytest.approx(
            pretrained["knn_accuracy"] - random_init["knn_accuracy"]
        )
        splits = [
            build_dataset(spec, path, s, eval_transform(cfg.data), cfg.data.image_size, run["seed"])
            for s in ("train", "test")
        ]
        (x_tr, y_tr), (x_te, y_te) = (
            (torch.stack([x.flatten() for x, _ in d]), torch.tensor([y for _, y in d]))
            for d in splits
        )
        pixels = float(knn_correct(x_tr, y_tr, x_te, y_te).float().mean())
        assert run["raw_pixels"]["knn_accuracy"] == pytest.approx(pixels)
        assert run["raw_pixels"]["feature_dim"] == 3 * 16 * 16
        last_epoch = [
            json.loads(line)
            for line in (last.parent / "metrics.jsonl").read_text().splitlines()
            if '"level_loss"' in line
        ][-1]
        assert run["final_epoch"]["collapse_warning"] == last_epoch["collapse_warning"]
    assert result["runs"][0]["random_init"] != result["runs"][1]["random_init"]
    # two worker processes did the work: their CPU time is counted, and each phase's
    assert report["jobs"] == 2 and report["cpu_seconds"] > sum(
        t["cpu_seconds"] for run in result["runs"] for t in run["phases"].values()
    )
    assert set(result["runs"][0]["phases"]) == {"pretrain", "eval_images", *_bench().ENCODERS}
    assert any(f.startswith("mean k-NN gain") for f in result["failures"])
    printed = capsys.readouterr().out
    assert printed.count("raw_pixels: 20-NN") == 2 and "FAIL: tiny.yaml" in printed
    assert "image-level sign test one-sided p = " in printed
    # a second run over the same folder starts over (the trainer would refuse a finished run)
    assert _bench().main([*argv, "--seeds", "0"]) == 1
    assert json.loads((out / "bench.json").read_text())["seeds"] == [0]


def test_bench_refuses_a_bad_config_in_one_line_before_any_work(tmp_path, jepa_files, capsys):
    good = tmp_path / "tiny.yaml"
    good.write_text(yaml.safe_dump(jepa_files.tiny_config(tmp_path, optim={"epochs": 1})))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load(good.read_text()), "optim": {"epochs": 0}}))
    out = tmp_path / "bench"
    for configs in ([str(good), str(bad)], [str(tmp_path / "missing.yaml")]):
        assert _bench().main(["--configs", *configs, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()  # the good config was not run either


def test_bench_names_the_cell_that_failed_in_one_line(tmp_path, jepa_files, capsys):
    raw = jepa_files.tiny_config(tmp_path, optim={"epochs": 1, "batch_size": 4096})
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))  # valid, but more than the data in one batch
    argv = ["--configs", str(config), "--out", str(tmp_path / "b"), "--seeds", "5", "--jobs", "1"]
    assert _bench().main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: tiny.yaml seed 5: ConfigError:") and err.count("\n") == 1


def _run(seed=0, gain=0.2, rankme=(5.0, 3.0), warning=False):
    return {
        "seed": seed,
        "knn_gain": gain,
        "pretrained": {"rankme": rankme[0]},
        "random_init": {"rankme": rankme[1]},
        "final_epoch": {"collapse_warning": warning},
    }


def test_verdict_fails_a_collapsed_seed_a_small_gain_or_no_significance():
    verdict = _bench().verdict
    good = [_run(0), _run(1), _run(2)]
    assert verdict(good, 1e-4, 0.15, 0.01) == []
    (low_rank,) = verdict([*good[:2], _run(2, rankme=(2.9, 3.0))], 1e-4, 0.15, 0.01)
    assert low_rank.startswith("seed 2 collapsed") and "RankMe 2.9" in low_rank
    (warned,) = verdict([_run(0, warning=True), *good[1:]], 1e-4, 0.15, 0.01)
    assert warned.startswith("seed 0 collapsed") and "collapse watch" in warned
    (small,) = verdict([_run(0, 0.3), _run(1, 0.1), _run(2, 0.04)], 1e-4, 0.15, 0.01)
    assert small == "mean k-NN gain +0.147 < +0.15"
    (chance,) = verdict(good, 0.02, 0.15, 0.01)
    assert chance == "image-level sign test one-sided p = 0.02 >= 0.01"


def test_image_sign_test_counts_an_image_once_however_many_seeds_repeat_it():
    """The same outcomes on three seeds are no more evidence than one seed: pooling the seeds'
    discordant pairs tripled them (p 0.002 against 0.073 here)."""
    image_sign_test = _bench().image_sign_test
    pretrained = torch.tensor([True] * 9 + [False] * 3 + [True] * 30)  # ahead on 9, behind on 3
    random_init = torch.tensor([False] * 9 + [True] * 3 + [True] * 30)
    one_seed = mcnemar_greater(pretrained, random_init)
    assert image_sign_test(pretrained[None], random_init[None]) == one_seed
    assert image_sign_test(pretrained.repeat(3, 1), random_init.repeat(3, 1)) == one_seed
    pooled = mcnemar_greater(pretrained.repeat(3), random_init.repeat(3))
    assert one_seed > 0.07 and pooled < 0.002
    # an image ahead on two seeds and behind on one counts as one image ahead
    two_to_one = torch.tensor([[True], [True], [False]]), torch.tensor([[False], [False], [True]])
    assert image_sign_test(*two_to_one) == 0.5


def test_image_sign_test_holds_its_level_when_seeds_share_test_images():
    """No true gain, 3 seeds scored on the same 360 images, an image's discordance kept from seed
    to seed with probability 0.8 (the reviewer's simulation of digits): the pooled McNemar test
    rejected at alpha 0.05 in ~0.135 of the draws, the image-level sign test in ~0.05."""
    image_sign_test = _bench().image_sign_test
    rng = np.random.default_rng(0)
    draws, seeds, images, kept = 500, 3, 360, 0.8
    pooled_rejects = image_rejects = 0
    for _ in range(draws):
        discordant, a_ahead = rng.random(images) < 0.3, rng.random(images) < 0.5
        keep = rng.random((seeds, images)) < kept
        discordant = np.where(keep, discordant, rng.random((seeds, images)) < 0.3)
        a_ahead = np.where(keep, a_ahead, rng.random((seeds, images)) < 0.5)
        agreed = rng.random((seeds, images)) < 0.5  # both right or both wrong
        a = torch.tensor(np.where(discordant, a_ahead, agreed))
        b = torch.tensor(np.where(discordant, ~a_ahead, agreed))
        pooled_rejects += mcnemar_greater(a.flatten(), b.flatten()) < 0.05
        image_rejects += image_sign_test(a, b) < 0.05
    standard_error = (0.05 * 0.95 / draws) ** 0.5
    assert image_rejects / draws <= 0.05 + 2 * standard_error
    assert pooled_rejects / draws >= 0.1


def test_a_configs_summary_tests_the_seeds_with_the_image_as_the_unit(capsys):
    """Three seeds with the same outcomes on the same 42 images: the summary's p is one seed's
    McNemar p (0.073, no pass at alpha 0.01), not the pooled pairs' 0.002 (a pass before)."""
    pretrained = [True] * 9 + [False] * 3 + [True] * 30
    random_init = [False] * 9 + [True] * 3 + [True] * 30
    runs = [
        {
            **_run(seed),
            "knn_correct": {"pretrained": pretrained, "random_init": random_init},
            "train_images_per_second": 100.0,
        }
        for seed in (0, 1, 2)
    ]
    args = argparse.Namespace(margin=0.15, alpha=0.01)
    summary = _bench().summarise_config("tiny.yaml", runs, args)
    one_seed = mcnemar_greater(torch.tensor(pretrained), torch.tensor(random_init))
    assert summary["failures"] == [f"image-level sign test one-sided p = {one_seed:.2g} >= 0.01"]
    assert summary["knn_gain_image_sign_test_p_value"] == one_seed > 0.07
    assert "image-level sign test one-sided p = 0.073 on 42 test images" in capsys.readouterr().out
