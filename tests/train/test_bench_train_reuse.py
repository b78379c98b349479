"""benchmarks/bench_train.py --reuse: a trained round is taken, not trained again, and its
runs are scored on a held-out set they were not scored on yet."""

import argparse
import json

import yaml


def trained_round(tmp_path, names=("i3d", "magvit"), scored_on=None):
    """A round of ``names`` trained on hard seed 3 for 8 epochs from training seed 1, each
    run scored on ``scored_on`` (a held-out folder) if given."""
    data = tmp_path / "train_hard_s3_5000"
    data.mkdir(exist_ok=True)
    (data / "metadata.json").write_text(json.dumps({"classes": ["Linear", "Circular"]}))
    out = tmp_path / "runs"
    for name in names:
        run = out / "hard_s3_t1" / name
        (run / "evaluations").mkdir(parents=True)
        config = {"extractor": name, "data": str(data), "epochs": 8, "seed": 1}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        (run / "results.json").write_text("{}")
        (run / "best.pt").write_bytes(b"weights")
        if scored_on is not None:
            record = {"extractor": name, "data": str(scored_on), "accuracy": 0.5}
            (run / "evaluations" / f"{scored_on.name}.all.json").write_text(json.dumps(record))
    args = argparse.Namespace(
        n=5000, epochs=8, reuse=True, out=out, data_root=tmp_path, extractors=list(names)
    )
    return data, out, args


def test_a_scored_round_is_read_not_trained(bench, tmp_path, monkeypatch):
    held_out = tmp_path / "eval_hard_s1000_2000"
    data, out, args = trained_round(tmp_path, scored_on=held_out)
    commands = []
    monkeypatch.setattr(bench, "run", lambda cmd: commands.append(cmd) or 0)
    records, minutes, classes = bench.round_of("hard", 3, 1, args, held_out)
    assert [r["extractor"] for r in records] == ["i3d", "magvit"] and minutes is None
    assert classes == ["Linear", "Circular"] and commands == []


def test_a_trained_round_is_scored_on_a_new_held_out_set_without_training(
    bench, tmp_path, monkeypatch
):
    """--eval-seed 2000 on rounds trained and scored on seed 1000: the runs are scored on
    the fresh clips; training them again took 50 minutes a round on 2 cores."""
    data, out, args = trained_round(tmp_path, scored_on=tmp_path / "eval_hard_s1000_2000")
    fresh = tmp_path / "eval_hard_s2000_2000"
    commands = []

    def evaluate(cmd):  # what train.evaluate writes for each run it is given
        commands.append(cmd)
        for path in cmd[cmd.index("train.evaluate") + 1 : cmd.index("--data")]:
            record = {"extractor": path.rsplit("/", 1)[1], "data": str(fresh), "accuracy": 0.7}
            (tmp_path / path / "evaluations" / f"{fresh.name}.all.json").write_text(
                json.dumps(record)
            )
        return 0

    monkeypatch.setattr(bench, "run", evaluate)
    records, minutes, _ = bench.round_of("hard", 3, 1, args, fresh)
    assert [cmd[2] for cmd in commands] == ["train.evaluate"]  # no train.parallel
    assert [r["accuracy"] for r in records] == [0.7, 0.7] and minutes is None
    assert (out / "hard_s3_t1" / "i3d" / "best.pt").read_bytes() == b"weights"


def test_a_round_that_differs_or_did_not_finish_is_trained_again(bench, tmp_path, monkeypatch):
    held_out = tmp_path / "eval_hard_s1000_2000"
    data, out, args = trained_round(tmp_path, scored_on=held_out)
    found = bench.trained_round
    assert found(out / "hard_s3_t1", ["i3d"], data, 8, 1) == [out / "hard_s3_t1" / "i3d"]
    assert found(out / "hard_s3_t1", ["i3d"], data, 4, 1) is None  # other epochs
    assert found(out / "hard_s3_t1", ["i3d"], data, 8, 0) is None  # other training seed
    assert found(out / "hard_s3_t1", ["i3d", "slowfast"], data, 8, 1) is None  # a run missing
    (out / "hard_s3_t1" / "i3d" / "results.json").unlink()  # stopped before it finished
    assert found(out / "hard_s3_t1", ["i3d"], data, 8, 1) is None
    (out / "hard_s3_t1" / "magvit" / "config.yaml").write_text("[unclosed")
    assert found(out / "hard_s3_t1", ["magvit"], data, 8, 1) is None
    commands = []
    monkeypatch.setattr(bench, "run", lambda cmd: commands.append(cmd) or 0)
    bench.round_of("hard", 3, 1, args, held_out)
    assert commands and "train.parallel" in commands[0]
    assert not (out / "hard_s3_t1").exists()  # emptied first; the stub trained nothing
