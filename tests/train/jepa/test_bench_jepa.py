"""``make bench-jepa`` end to end on a seconds-long config: per-seed runs, pooled verdict."""

import importlib.util
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_jepa", ROOT / "benchmarks/bench_jepa.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_runs_each_seed_and_pools_the_paired_test(tmp_path, jepa_files, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(jepa_files.tiny_config(tmp_path, optim={"epochs": 1})))
    out = tmp_path / "bench"
    # a margin no run can reach: the verdict must fail, and say why
    status = _bench().main(
        ["--config", str(config), "--out", str(out), "--seeds", "0", "3", "--margin", "2"]
    )
    assert status == 1
    report = json.loads((out / "bench.json").read_text())
    assert [run["seed"] for run in report["runs"]] == [0, 3]
    for run in report["runs"]:
        assert (out / f"seed{run['seed']}" / "last.pt").is_file()
        assert run["knn_gain"] == (
            run["pretrained"]["knn_accuracy"] - run["random_init"]["knn_accuracy"]
        )
        assert 0 <= run["knn_gain_p_value"] <= 1
    # different seeds are different runs: data, masks and initialisation all follow the seed
    assert report["runs"][0]["random_init"] != report["runs"][1]["random_init"]
    gains = [run["knn_gain"] for run in report["runs"]]
    assert report["knn_gain_mean"] == sum(gains) / 2 and report["knn_gain_min"] == min(gains)
    assert 0 <= report["knn_gain_pooled_p_value"] <= 1
    printed = capsys.readouterr().out
    assert (
        printed.count("k-NN gain") == 2
        and "FAIL:" in printed
        and "on 24 held-out images" in printed
    )
