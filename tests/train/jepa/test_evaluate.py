import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

from train.jepa.config import parse_config
from train.jepa.evaluate import main
from train.jepa.evaluation import RawPixels, eval_splits, evaluate, load_encoder
from train.jepa.train import train

ROOT = Path(__file__).resolve().parents[3]


def test_evaluate_cli_writes_json_and_one_line(tmp_path, jepa_files, capsys):
    cfg = parse_config(jepa_files.tiny_config(tmp_path, optim={"epochs": 1}))
    train(cfg, quiet=True)
    ckpt = tmp_path / "run" / "last.pt"
    assert main(["--checkpoint", str(ckpt), "--dataset", "synthetic", "--probe-iters", "20"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("synthetic: linear probe") and "\n" not in line
    result = json.loads((tmp_path / "run" / "eval_synthetic.json").read_text())
    assert result["train_samples"] == 48 and result["test_samples"] == 12
    assert result["knn_k"] == 20 and result["knn_temperature"] == 0.07
    assert 0 <= result["knn_accuracy"] <= 1 and 1 <= result["rankme"] <= 32
    assert (
        main(
            [
                "--checkpoint",
                str(ckpt),
                "--dataset",
                "synthetic",
                "--random-init",
                "--probe-iters",
                "20",
            ]
        )
        == 0
    )
    assert (tmp_path / "run" / "eval_synthetic_random_init.json").is_file()
    # per-image k-NN outcomes, for the benchmark's paired test: the accuracy's own samples
    kept = evaluate(
        load_encoder(ckpt, cfg),
        cfg,
        cfg.data.datasets[0],
        cfg.data.data_path,
        probe_iters=1,
        keep_knn_correct=True,
    )
    assert kept["knn_correct"].dtype == torch.bool and kept["knn_correct"].shape == (12,)
    assert kept["knn_accuracy"] == result["knn_accuracy"] == kept["knn_correct"].float().mean()


def test_evaluate_bad_input(tmp_path, capsys):
    """A missing checkpoint is a wrong argument (exit 2); one that is no regular file is an
    unreadable checkpoint (exit 1, as the README says), a folder or "/" included: "/" was a
    traceback (no name to put the results beside)."""
    assert main(["--checkpoint", str(tmp_path / "nope.pt"), "--dataset", "synthetic"]) == 2
    assert "not found" in capsys.readouterr().err
    for folder in (tmp_path, Path("/")):
        assert main(["--checkpoint", str(folder), "--dataset", "synthetic"]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"error: {folder} is not a regular file", err


def test_evaluate_a_fifo_checkpoint_is_exit_1_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "fifo.pt")
    argv = ["-m", "train.jepa.evaluate", "--checkpoint", str(tmp_path / "fifo.pt")]
    done = subprocess.run(
        [sys.executable, *argv, "--dataset", "synthetic"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"error: {tmp_path / 'fifo.pt'} is not a regular file\n"


def test_evaluate_records_the_k_it_used_and_checks_out_first(tmp_path, jepa_files, capsys):
    cfg = parse_config(jepa_files.tiny_config(tmp_path, optim={"epochs": 1}))
    train(cfg, quiet=True)
    capsys.readouterr()
    args = ["--checkpoint", str(tmp_path / "run" / "last.pt"), "--dataset", "synthetic"]
    (tmp_path / "taken").mkdir()
    assert main([*args, "--out", str(tmp_path / "taken")]) == 2  # before any feature is made
    err = capsys.readouterr().err.strip()
    assert err == f"error: --out {tmp_path / 'taken'} is not a regular file", err
    out = tmp_path / "new" / "folder" / "eval.json"
    assert main([*args, "--k", "1000", "--probe-iters", "5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["knn_k"] == 48  # every training image, not 1000
    assert "48-NN" in capsys.readouterr().out


def test_evaluate_on_images_held_in_memory_matches_reading_them(tmp_path, jepa_files):
    # the benchmark draws a cell's images once (eval_splits) for its three encoders
    cfg = parse_config(jepa_files.tiny_config(tmp_path))
    spec, path = cfg.data.datasets[0], cfg.data.data_path
    splits = eval_splits(cfg, spec, path)
    assert [len(splits[s]) for s in ("train", "test")] == [48, 12]
    for encoder in (load_encoder(None, cfg, 0), RawPixels()):
        lazy = evaluate(encoder, cfg, spec, path, probe_iters=20, keep_knn_correct=True)
        held = evaluate(
            encoder, cfg, spec, path, probe_iters=20, keep_knn_correct=True, splits=splits
        )
        assert held["knn_correct"].equal(lazy.pop("knn_correct"))
        held.pop("knn_correct")
        assert held == lazy


def test_evaluate_refuses_unmeasurable_features_in_one_line(
    tmp_path, jepa_files, capsys, monkeypatch
):
    """A diverged checkpoint (NaN weights) was a traceback from RankMe after two silent
    accuracies; one training image gave the probe a NaN std and a silent accuracy."""
    cfg = parse_config(jepa_files.tiny_config(tmp_path, optim={"epochs": 1}))
    train(cfg, quiet=True)
    ckpt = tmp_path / "run" / "last.pt"
    state = torch.load(ckpt, weights_only=True)
    state["target_encoder"] = {k: v.fill_(math.nan) for k, v in state["target_encoder"].items()}
    diverged = tmp_path / "diverged.pt"
    torch.save(state, diverged)
    capsys.readouterr()
    assert main(["--checkpoint", str(diverged), "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: the train split's features are NaN or inf in 48 of 48 samples "
        "(a diverged encoder?): nothing can be measured on them\n"
    )
    # CIFAR-100 with one training image (and the checkpoint's own weights)
    md5s = jepa_files.write_cifar(tmp_path / "one" / "cifar100", "cifar100", n_train=1, n_test=4)
    jepa_files.patch_md5s(monkeypatch, "cifar100", md5s)
    args = ["--checkpoint", str(ckpt), "--dataset", "cifar100", "--data-path"]
    assert main([*args, str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err
    assert err == "error: a probe of frozen features needs at least 2 training samples, got 1\n"
    assert not list(tmp_path.glob("**/eval_*.json"))


def test_an_explicit_data_path_wins_over_the_root_the_run_recorded(
    tmp_path, jepa_files, monkeypatch, capsys
):
    """The run's root was used whatever --data-path said: after moving the data the error named
    the old place (and a copy left there would have been evaluated instead, without a word)."""
    old = tmp_path / "old" / "c10"
    jepa_files.patch_md5s(monkeypatch, "cifar10", jepa_files.write_cifar(old, "cifar10"))
    data = {"datasets": [{"kind": "cifar10", "root": str(old)}]}
    train(
        parse_config(jepa_files.tiny_config(tmp_path, data=data, optim={"epochs": 1})), quiet=True
    )
    (tmp_path / "new").mkdir()
    old.rename(tmp_path / "new" / "cifar10")
    ckpt = str(tmp_path / "run" / "last.pt")
    argv = ["--checkpoint", ckpt, "--dataset", "cifar10", "--probe-iters", "5", "--k", "3"]
    assert main(argv) == 2  # without --data-path: the recorded root, which is gone
    assert f"cifar10 not usable at {old} (" in capsys.readouterr().err
    assert main([*argv, "--data-path", str(tmp_path / "new")]) == 0
    assert capsys.readouterr().out.startswith("cifar10: linear probe")
    result = json.loads((tmp_path / "run" / "eval_cifar10.json").read_text())
    assert result["train_samples"] == 20 and result["test_samples"] == 10


def test_a_missing_dataset_names_a_download_that_fills_the_place_looked_in(tmp_path):
    """For a root of another name than the downloader's folder, the hint named its parent,
    where the download made <parent>/cifar10, not the root."""
    from train.jepa.config import DatasetSpec
    from train.jepa.datasets import DatasetMissing, build_dataset

    for root, advice in [
        (
            tmp_path / "x" / "nope",
            f"--data-path {tmp_path / 'x' / 'nope'}` and make its "
            f"{tmp_path / 'x' / 'nope' / 'cifar10'} the dataset's root",
        ),
        (tmp_path / "x" / "cifar10", f"--data-path {tmp_path / 'x'}`"),
    ]:
        spec = DatasetSpec(kind="cifar10", root=str(root))
        try:
            build_dataset(spec, tmp_path, "test")
        except DatasetMissing as err:
            text = str(err)
        assert text.startswith(f"cifar10 not usable at {root} (")
        assert text.endswith(f"run `python -m train.jepa.download cifar10 {advice}"), text


def test_a_runs_second_dataset_of_a_kind_is_evaluated_by_its_name(tmp_path, jepa_files, capsys):
    """--dataset synthetic evaluated the first of two, and the JSON did not say which; the
    second could not be chosen."""
    datasets = [
        {"kind": "synthetic", "synthetic_size": 48},
        {"kind": "synthetic", "synthetic_size": 24, "synthetic_kind": "shapes"},
    ]
    raw = jepa_files.tiny_config(tmp_path, data={"datasets": datasets}, optim={"epochs": 1})
    train(parse_config(raw), quiet=True)
    run = tmp_path / "run"
    argv = ["--checkpoint", str(run / "last.pt"), "--probe-iters", "5", "--k", "3", "--dataset"]
    for name, size in (("synthetic", 48), ("synthetic_2", 24)):
        assert main([*argv, name]) == 0
        result = json.loads((run / f"eval_{name}.json").read_text())
        assert result["dataset_spec"]["synthetic_size"] == size and result["train_samples"] == size
    assert result["dataset_spec"]["synthetic_kind"] == "shapes"
    capsys.readouterr()
    assert main([*argv, "synthetic_3"]) == 2
    assert capsys.readouterr().err == (
        "error: --dataset synthetic_3: the run has no such dataset (its datasets: synthetic, "
        "synthetic_2)\n"
    )
