"""The opt-in motion classes (``classes:``): config, balance, determinism, stream = disk,
validate, reader and trainer with seven classes; nothing changes for a config without them."""

import json
from collections import Counter

import numpy as np
import pytest
import torch
import yaml

from generator.config import (
    CLASS_NAMES,
    KNOWN_CLASS_NAMES,
    MOTION_SECTIONS,
    ConfigError,
    GeneratorConfig,
    load_config,
)
from generator.dataformat.dataset import TrajectoryDataset, read_metadata
from generator.dataformat.layout import label_bytes
from generator.dataformat.sources import open_source
from generator.dataformat.validate import validate
from generator.pipeline.stream import RenderedSource, stream_metadata
from generator.render.sample import SampleMaker, class_of
from tests.generator.conftest import ROOT, run_cli

SEVEN = list(KNOWN_CLASS_NAMES)
SMALL = {"image_size": 32, "frames": 12, "classes": SEVEN}


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    """21 samples of all seven classes (three blocks), in chunks of 8: the config and folder."""
    where = tmp_path_factory.mktemp("seven")
    config = where / "seven.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    root = where / "ds"
    args = ("--n", 21, "--out", root, "--config", config, "--workers", 1, "--quiet")
    assert run_cli(*args, "--checkpoint-every", 8, "--seed", 3) == 0
    return config, root


# ------------------------------------------------------------------ config


def test_a_config_without_classes_dumps_as_before_and_the_default_list_is_no_list():
    default = GeneratorConfig()
    assert not set(MOTION_SECTIONS) & set(default.model_dump(mode="json"))
    assert default.class_names == CLASS_NAMES
    listed = GeneratorConfig.model_validate({"classes": list(CLASS_NAMES)})
    assert listed.model_dump_json() == default.model_dump_json()


def test_a_listed_class_gets_its_section_in_the_dump_and_it_round_trips():
    cfg = GeneratorConfig.model_validate({"classes": ["Linear", "Bouncing", "Damped"]})
    dump = cfg.model_dump(mode="json")
    assert dump["classes"] == ["Linear", "Bouncing", "Damped"]
    assert dump["bouncing"]["restitution"] == {"lo": 0.55, "hi": 0.85}
    assert "damped" in dump and "switching" not in dump
    assert GeneratorConfig.model_validate(dump) == cfg
    assert cfg.class_names == ("Linear", "Bouncing", "Damped")


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"classes": ["Linear", "Linear", "Damped"]}, "classes: Linear listed more than once"),
        ({"classes": ["Damped"]}, "classes: list at least two"),
        ({"classes": ["Linear", "Wobbly"]}, "classes.1"),
        ({"classes": "Linear"}, "classes"),
        ({"bouncing": {}}, "bouncing: set, but Bouncing is not in classes"),
        ({"classes": SEVEN, "damped": {"amplitude": {"lo": 0, "hi": 1}}}, "damped.amplitude"),
        (
            {"classes": SEVEN, "bouncing": {"first_bounce_fraction": {"lo": 0, "hi": 0.5}}},
            "bouncing.first_bounce_fraction",
        ),
        ({"classes": SEVEN, "switching": {"speed": {"lo": 20, "hi": 20}}}, "switching: only"),
        ({"classes": SEVEN, "bouncing": {"start_height": {"lo": 9, "hi": 9}}}, "bouncing: only"),
        ({"classes": SEVEN, "damped": {"speed": {"lo": 1, "hi": 2}}}, "damped.speed"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_a_wrong_class_set_or_section_is_refused_naming_the_field(tmp_path, raw, field):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and f": {field}" in message, message


# ------------------------------------------------------------------ balance and determinism


@pytest.mark.parametrize("num", [4, 7])
def test_classes_come_in_shuffled_blocks_so_every_prefix_is_balanced(num):
    for seed in (0, 9):
        labels = [class_of(seed, i, num) for i in range(10 * num + 3)]
        assert sorted(labels[:num]) == list(range(num))
        for end in range(1, len(labels) + 1):
            counts = Counter(labels[:end])
            assert max(counts.values()) - min(counts.get(c, 0) for c in range(num)) <= 1
    assert [class_of(0, i) for i in range(8)] == [class_of(0, i, 4) for i in range(8)]


def test_seven_classes_draw_each_law_with_its_name_and_the_same_bytes_again():
    cfg = GeneratorConfig.model_validate(SMALL)
    a, b = SampleMaker(cfg), SampleMaker(GeneratorConfig.model_validate(SMALL))
    names = []
    for index in range(7):
        video, label = a.make(4, index)
        again, label_again = b.make(4, index)
        assert video.tobytes() == again.tobytes()
        assert label_bytes(label) == label_bytes(label_again)
        assert label["class_name"] == SEVEN[label["class_label"]]
        names.append(label["class_name"])
    assert sorted(names) == sorted(SEVEN)
    first = {n: a.label(4, i)["trajectory_params"] for i, n in enumerate(names)}
    assert "bounce_times" in first["Bouncing"] and "switch_frame" in first["Switching"]
    assert "damping" in first["Damped"]


def test_distractors_draw_from_the_configs_classes():
    cfg = GeneratorConfig.model_validate({**SMALL, "distractors": {"count": 3}})
    maker = SampleMaker(cfg)
    seen = {b["class_label"] for i in range(8) for b in maker.make(1, i)[1]["distractors"]}
    assert seen <= set(range(7)) and max(seen) >= 4


# ------------------------------------------------------------------ on disk and on the fly


def test_metadata_validate_and_reader_follow_the_seven_classes(seven, capsys):
    config, root = seven
    meta = read_metadata(root)
    assert meta["classes"] == SEVEN
    assert meta["class_distribution"] == dict.fromkeys(SEVEN, 3)
    fingerprint = json.loads((root / "checkpoints" / "fingerprint.json").read_text())
    assert fingerprint["config"]["classes"] == SEVEN
    rep = validate(root)
    assert not rep.failed, rep.lines
    assert "ok   class balance: " + ", ".join(f"{c} 3" for c in SEVEN) in rep.lines
    ds = TrajectoryDataset(root, "train", normalize=False)
    labels = {int(ds[k]["label"]) for k in range(len(ds))}
    assert labels <= set(range(7)) and max(labels) >= 4


def test_rendered_samples_of_a_seven_class_config_equal_the_disk(seven):
    config, root = seven
    meta = read_metadata(root)
    disk = open_source(root, meta)
    rendered = RenderedSource(load_config(config), 3)
    for index in range(21):
        video, label = disk.read(index)
        r_video, r_label = rendered.read(index)
        assert torch.equal(video, r_video), index
        stored = {k: v for k, v in label.items() if k != "video_sha256"}
        assert json.dumps(stored, sort_keys=True) == json.dumps(r_label, sort_keys=True)
    streamed = stream_metadata(load_config(config), 3)
    assert streamed["classes"] == meta["classes"] and streamed["config"] == meta["config"]


def _relabel(root, index, **changes):
    """Edit label ``index`` and re-seal its manifest, so only the edit itself is wrong."""
    import hashlib

    path = root / "labels" / f"sample_{index:04d}.json"
    label = json.loads(path.read_text())
    label.update(changes)
    data = label_bytes(label)
    path.write_bytes(data)
    for manifest in (root / "checkpoints").glob("checkpoint_*.json"):
        m = json.loads(manifest.read_text())
        for e in m["samples"]:
            if e["index"] == index:
                e["label_sha256"] = hashlib.sha256(data).hexdigest()
        manifest.write_text(json.dumps(m))


def test_validate_names_a_class_name_or_label_outside_the_class_set(seven, tmp_path):
    import shutil

    _, root = seven
    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    label = json.loads((copy / "labels" / "sample_0002.json").read_text())
    wrong = SEVEN[(label["class_label"] + 1) % 7]
    _relabel(copy, 2, class_name=wrong)
    _relabel(copy, 5, class_label=7)
    text = "\n".join(validate(copy).lines)
    assert f"sample_0002.json: class_name {wrong!r} does not match class" in text
    assert "sample_0005.json: class_label 7 is not one of 0..6" in text


def test_a_four_class_dataset_refuses_a_fifth_class(small_dataset, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(small_dataset, copy)
    _relabel(copy, 1, class_label=4, class_name="Bouncing")
    rep = validate(copy)
    assert rep.failed and any(
        "sample_0001.json: class_label 4 is not one of 0..3" in x for x in rep.lines
    )


def test_the_trainer_learns_seven_classes_from_disk(seven, tmp_path):
    from train.__main__ import main as train

    _, root = seven
    out = tmp_path / "run"
    # 21 samples, 3 a class: split seed 0 deals none to val, which the trainer refuses
    (tmp_path / "deal.yaml").write_text("split_seed: 1\n")
    args = ["--extractor", "i3d", "--data", str(root), "--epochs", "1", "--out", str(out)]
    args += ["--config", str(tmp_path / "deal.yaml")]
    assert train([*args, "--workers", "0", "--threads", "1", "--quiet", "--batch-size", "4"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["classes"] == SEVEN
    assert np.asarray(results["test_confusion"]).shape == (7, 7)
    assert len(results["val_per_class_accuracy"]) == 7


# ------------------------------------------------------------------ the benchmark's table


def test_bench_train_names_the_classes_the_data_has(bench):
    run = {"extractor": "i3d", "accuracy": 0.5, "future_rmse_fraction": 0.1}
    results = {
        "easy": {0: [{**run, "per_class_accuracy": [1.0, 0.5, 0.25, 0.0]}]},
        "hard": {0: [{**run, "per_class_accuracy": [0.1 * k for k in range(7)]}]},
    }
    rows = bench.table(results, ["i3d"], {"easy": list(CLASS_NAMES), "hard": SEVEN})
    text = bench.markdown(rows)
    assert "| line 100, circ 50, heli 25, para 0 |" in text
    assert "line 0, circ 10, heli 20, para 30, boun 40, damp 50, swit 60 |" in text


# ------------------------------------------------------------------ the README


def test_readmes_table_of_new_classes_gives_each_sections_defaults():
    import re

    from generator.config import BouncingConfig, DampedConfig, Range, SwitchingConfig

    readme = " ".join((ROOT / "README.md").read_text().split())
    for name, model in (
        ("Bouncing", BouncingConfig),
        ("Damped", DampedConfig),
        ("Switching", SwitchingConfig),
    ):
        rows = re.findall(rf"\| {name} \| [^|]* \| `{name.lower()}`: ([^|]*) \|", readme)
        assert len(rows) == 1, name
        for field, value in model():
            said = f"{value.lo}-{value.hi}" if isinstance(value, Range) else f"{value}"
            assert f"{field} {said}" in rows[0], (name, field)
    assert (
        "`classes: [Linear, Circular, Helical, Parabolic, Bouncing, Damped, Switching]`" in readme
    )
    hard = load_config(ROOT / "configs" / "generator" / "hard.yaml")
    assert hard.class_names == tuple(SEVEN)


def test_bench_train_refuses_to_score_on_a_seed_it_trains_on(bench, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["bench_train.py", "--seeds", "0", "7", "--eval-seed", "7"])
    with pytest.raises(SystemExit) as e:
        bench.main()
    assert e.value.code == 2 and "also a training seed" in capsys.readouterr().err


def test_bench_train_ranks_by_leads_paired_by_seed(bench):
    """An easier seed lifts every extractor: the means sit within one spread, the leads hold."""
    ease = {0: 0.0, 1: 0.04, 2: -0.01}  # seed 1 is 4 points easier for everyone
    base = {"i3d": 0.70, "magvit": 0.68, "slowfast": 0.60, "transformer": 0.59}
    flip = {0: 0.02, 1: -0.02, 2: 0.03}  # transformer's lead over... nobody: it flips

    def record(name, seed):
        acc = base[name] + ease[seed] + (flip[seed] if name == "transformer" else 0.0)
        return {"extractor": name, "accuracy": acc, "future_rmse_fraction": 0.1,
                "per_class_accuracy": [acc] * 7}  # fmt: skip

    results = {"hard": {s: [record(n, s) for n in base] for s in ease}}
    rows = bench.table(results, list(base), {"hard": SEVEN})
    missed = bench.missed_targets(rows, {})
    assert any("i3d and magvit 2.0 pts apart, within the seed spread" in m for m in missed)
    assert bench.ranking(rows, "hard") in (
        "i3d > magvit > transformer = slowfast",
        "i3d > magvit > slowfast = transformer",
    )
    tests = bench.paired_tests(rows, "hard")
    # paired, seed 1's ease cancels; unpaired, it is a 5-point spread that hides the lead
    assert tests[0] == (
        "i3d over magvit: lead 2.0 +- 0.0 pts, paired t inf (2 df), p 0; "
        "unpaired (Welch) t 0.9 (4.0 df), p 0.407"
    )
    assert tests[1].startswith("magvit over ") and "(2 df), p 0; unpaired" in tests[1]
    # slowfast and the transformer tie on average, the lead changing sign with the seed
    assert "lead 0.0 +- 2.6 pts, paired t 0.0 (2 df), p 1; unpaired" in tests[2], tests[2]
    text = bench.markdown(rows)
    assert "| hard | i3d | 70.0, 74.0, 69.0 | 71.0 | 5.0 | 2.0, 2.0, 2.0 |" in text


def test_bench_train_averages_the_runs_of_a_dataset_seed(bench, monkeypatch):
    """Two training seeds per dataset seed: the seed's accuracy is their mean, the spread is
    between dataset seeds, and the table shows the single runs."""

    def record(name, acc):
        if acc is None:  # a run without a result
            return {"extractor": name, "accuracy": None, "future_rmse_fraction": None,
                    "per_class_accuracy": None}  # fmt: skip
        return {"extractor": name, "accuracy": acc, "future_rmse_fraction": acc / 10,
                "per_class_accuracy": [acc] * 7}  # fmt: skip

    results = {
        "hard": {
            0: [record("i3d", 0.70), record("magvit", 0.60), record("i3d", 0.74)],
            1: [
                record("i3d", 0.75),
                record("magvit", 0.62),
                record("i3d", 0.73),
                record("magvit", None),
            ],  # fmt: skip
        }
    }
    rows = {r["extractor"]: r for r in bench.table(results, ["i3d", "magvit"], {"hard": SEVEN})}
    i3d, magvit = rows["i3d"], rows["magvit"]
    assert i3d["accuracy"] == pytest.approx([0.72, 0.74])
    assert i3d["spread"] == pytest.approx(0.02) and i3d["run_spread"] == pytest.approx(0.05)
    assert i3d["rmse_fraction"] == pytest.approx(0.073)
    assert magvit["runs"] == {0: [0.60], 1: [0.62]}  # the failed run counts for nothing
    assert bench.leads(i3d, magvit) == pytest.approx([0.12, 0.12])
    assert "| hard | i3d | 72.0 (70.0/74.0), 74.0 (75.0/73.0) | 73.0 | 2.0 | 12.0, 12.0 |" in (
        bench.markdown(list(rows.values()))
    )
    monkeypatch.setattr("sys.argv", ["bench_train.py", "--train-seeds", "-1"])
    with pytest.raises(SystemExit) as e:
        bench.main()
    assert e.value.code == 2


def test_bench_train_tests_each_rounds_leads_clip_by_clip(bench, tmp_path):
    """Per round, McNemar's test on the clips the two runs scored: significant where one
    run wins most of the clips only one of them got right, not where they split evenly."""
    from train.trajectory.clips import clips_csv, mcnemar_p

    labels = np.zeros(100)
    right = {  # round -> extractor -> clips it got right
        "hard_s0_t0": {"i3d": range(0, 60), "magvit": range(30, 60)},  # 30 against 0
        "hard_s1_t0": {"i3d": range(0, 60), "magvit": range(5, 60)},  # 5 against 0
    }
    results = {"hard": {}}
    for seed, (name, runs) in enumerate(right.items()):
        for extractor, ok in runs.items():
            run = tmp_path / name / extractor
            (run / "evaluations").mkdir(parents=True)
            predicted = np.where(np.isin(np.arange(100), list(ok)), 0, 1)
            rows = np.stack([np.arange(100), labels, predicted, labels], 1)
            (run / "evaluations" / "e.clips.csv").write_bytes(clips_csv(rows))
            results["hard"].setdefault(seed, []).append(
                {"extractor": extractor, "accuracy": len(ok) / 100, "run": str(run),
                 "clips": "e.clips.csv", "future_rmse_fraction": 0.1, "per_class_accuracy": None}
            )  # fmt: skip
    results["hard"][1].append(  # scored before clips files: left out, not an error
        {"extractor": "slowfast", "accuracy": 0.1, "run": str(tmp_path / "old"),
         "clips": None, "future_rmse_fraction": 0.1, "per_class_accuracy": None}
    )  # fmt: skip
    rows = bench.table(results, ["i3d", "magvit", "slowfast"])
    (line,) = bench.clip_tests(results, rows, "hard")
    assert line == (
        f"i3d over magvit: hard_s0_t0 +30.0 (p {mcnemar_p(30, 0):.2g}), "
        f"hard_s1_t0 +5.0 (p {mcnemar_p(5, 0):.2g}); ahead at p < 0.05 in 1 of 2 rounds"
    )


@pytest.mark.parametrize(
    ("flags", "rounds"),
    [([], [(0, 0), (1, 1)]), (["--train-seeds", "0", "5"], [(0, 0), (0, 5), (1, 0), (1, 5)])],
)
def test_bench_train_trains_each_dataset_seed_from_its_own_seed_unless_told(
    bench, monkeypatch, tmp_path, flags, rounds
):
    """One initialisation shared by every dataset seed would decide the paired leads."""
    calls = []
    monkeypatch.setattr(
        bench, "dataset", lambda level, seed, n, folder: bench.level_dataset(level, seed, n)
    )
    monkeypatch.setattr(
        bench,
        "round_of",
        lambda level, seed, t, args, held: calls.append((seed, t)) or ([], 1.0, SEVEN),
    )
    argv = ["bench_train.py", "--preset", "hard", "--seeds", "0", "1", "--out", str(tmp_path)]
    argv += ["--data-root", str(tmp_path / "data")]
    monkeypatch.setattr("sys.argv", [*argv, *flags])
    assert bench.main() == 1  # no run, no result
    assert calls == rounds
