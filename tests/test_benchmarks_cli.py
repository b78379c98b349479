"""The benchmarks' command lines (``benchmarks/*.py``): a bad, tiny or repeated flag value is
one argparse line and exit 2, an expected failure one line, and what they print says what
they measured. Run in-process with ``sys.argv`` set, as the scripts read it."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.__main__ import main as generate
from trajkit.lock import FolderLock

TINY = "frames: 4\nhorizon: 1\nimage_size: 16\ncameras: {azimuths_deg: [20.0], elevations_deg: [30.0]}\n"


def script(name: str):
    return importlib.import_module(f"benchmarks.{name}")


def one_error_line(capsys) -> str:
    """The only line on stderr, checked to be no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


def exits_2(main, capsys, monkeypatch, prog: str, argv: list[str]) -> str:
    monkeypatch.setattr(sys, "argv", [prog, *argv])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    line = one_error_line(capsys)
    assert line.startswith(f"{prog}: error: "), line
    return line


@pytest.fixture
def no_subprocess(bench, monkeypatch):
    """bench_train's commands are never run: a flag refused must be refused before them."""
    monkeypatch.setattr(bench, "run", lambda cmd: pytest.fail(f"ran {cmd}"))
    return bench


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--n", "0"], "argument --n: must be positive, got 0"),  # was taken as "no --n"
        (["--epochs", "0"], "argument --epochs: must be 1..100000, got 0"),
        (["--seeds", "-1"], "argument --seeds: must be 0..4294967295, got -1"),
        (["--eval-n", "0"], "argument --eval-n: must be positive, got 0"),
        (["--eval-seed", "x"], "argument --eval-seed: expected a whole number, got 'x'"),
        (["--seeds", "1", "1"], "--seeds names 1 more than once"),
        (["--seeds", "1", "2", "--train-seeds", "0", "0"], "--train-seeds names 0 more than once"),
        (["--preset", "easy", "easy"], "--preset names easy more than once"),
        (["--extractors", "i3d", "i3d"], "--extractors names i3d more than once"),
    ],
)
def test_bench_train_refuses_a_bad_or_repeated_flag_value_before_any_work(
    no_subprocess, capsys, monkeypatch, tmp_path, argv, says
):
    """``--seeds 1 1`` counted one run as two (``25.0 (25.0/25.0/...)``), and without
    ``--reuse`` trained the same folder again."""
    argv += ["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    line = exits_2(no_subprocess.main, capsys, monkeypatch, "bench_train.py", argv)
    assert says in line and not (tmp_path / "out").exists()


def test_bench_train_refuses_an_out_folder_under_a_file_before_any_work(
    no_subprocess, capsys, monkeypatch, tmp_path
):
    """It was a NotADirectoryError traceback, after every round had trained."""
    (tmp_path / "file").write_text("")
    argv = ["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "file" / "out")]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv])
    assert no_subprocess.main() == 2
    assert one_error_line(capsys) == (
        f"bench_train.py: error: Not a directory: {tmp_path / 'file' / 'out'}"
    )


def test_bench_train_on_an_out_folder_another_one_holds_exits_1_before_any_work(
    no_subprocess, capsys, monkeypatch, tmp_path
):
    """Two benches on one --out trained the same rounds at once, and one's --reuse could
    take (or set aside) the other's half-written runs. The one refused made its --data-root
    first, and left it behind."""
    out = tmp_path / "out"
    out.mkdir()
    holder = FolderLock(out / ".lock").acquire()  # the first bench, as the lock sees it
    monkeypatch.setattr(no_subprocess, "dataset", lambda *args: pytest.fail("did work"))
    argv = ["--data-root", str(tmp_path / "data"), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv])
    try:
        assert no_subprocess.main() == 1
    finally:
        holder.release()
    line = one_error_line(capsys)
    assert line.startswith(
        f"bench_train.py: error: {out} is being written by process {os.getpid()} on "
    )
    assert list(out.iterdir()) == [out / ".lock"] and not (tmp_path / "data").exists()


def test_bench_train_refuses_an_out_folder_whose_lock_file_is_not_ours(
    no_subprocess, capsys, monkeypatch, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text("a user's notes")
    argv = ["--data-root", str(tmp_path / "data"), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv])
    assert no_subprocess.main() == 2
    assert one_error_line(capsys) == (
        f"bench_train.py: error: {out / '.lock'} is not a lock file of this project; move it "
        "away or choose another folder"
    )
    assert (out / ".lock").read_text() == "a user's notes" and not (tmp_path / "data").exists()


def test_bench_train_refuses_a_data_root_under_a_file_and_lets_go_of_its_out(
    no_subprocess, capsys, monkeypatch, tmp_path
):
    """--data-root is made once --out is locked: refused, it lets go of the lock."""
    (tmp_path / "file").write_text("")
    out = tmp_path / "out"
    out.mkdir()
    argv = ["--data-root", str(tmp_path / "file" / "data"), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv])
    assert no_subprocess.main() == 2
    assert one_error_line(capsys) == (
        f"bench_train.py: error: Not a directory: {tmp_path / 'file' / 'data'}"
    )
    FolderLock(out / ".lock").acquire().release()  # not held any more


@pytest.fixture
def scored(bench, monkeypatch):
    """bench_train whose datasets and rounds are stand-ins: every round scores 99%."""
    meta = {"seed": 1000, "classes": ["Linear", "Circular"], "total_samples": 20}
    record = {"extractor": "i3d", "accuracy": 0.99, "future_rmse_fraction": 0.01}
    record["per_class_accuracy"] = [1.0, 0.98]
    monkeypatch.setattr(bench, "dataset", lambda *args: meta)
    monkeypatch.setattr(bench, "round_of", lambda *args: ([dict(record)], 1.0, meta["classes"]))
    return bench


def test_bench_train_prints_its_table_then_saves_it(scored, capsys, monkeypatch, tmp_path):
    out = tmp_path / "out"
    argv = ["--extractors", "i3d", "--data-root", str(tmp_path), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv])
    assert scored.main() == 0
    FolderLock(out / ".lock").acquire().release()  # let go for the next bench
    printed = capsys.readouterr().out
    saved = (out / "levels.md").read_text()
    assert "| easy | i3d | 99.0 | 99.0 |" in saved and saved in printed
    assert json.loads((out / "levels.json").read_text())["rows"][0]["mean"] == 0.99


def test_bench_train_that_cannot_save_its_table_has_printed_it_and_says_so_in_one_line(
    scored, capsys, monkeypatch, tmp_path
):
    """The files were written before the table was printed: a full disk or an unwritable
    --out at the end of an hours-long run lost the table too, in a traceback."""
    out = tmp_path / "out"
    (out / "levels.md").mkdir(parents=True)  # what a write there meets: an OSError
    argv = ["--extractors", "i3d", "--data-root", str(tmp_path), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["bench_train.py", *argv])
    assert scored.main() == 1
    captured = capsys.readouterr()
    assert "| easy | i3d | 99.0 | 99.0 |" in captured.out and "targets: all met" in captured.out
    assert captured.err == (
        f"bench_train.py: error: the table is not saved: Is a directory: {out / 'levels.md'}\n"
    )


@pytest.fixture
def timed(monkeypatch):
    """bench_extractors whose train steps are stand-ins: 0.4 CPU s for 8 four-camera clips."""
    bench = script("bench_extractors")

    def step(name, preset, repeats):
        return [0.5] * repeats, [0.4] * repeats, 1000, (8, 4, 3, 32, 32, 32)

    monkeypatch.setattr(bench, "time_train_step", step)
    return bench


def test_bench_extractors_counts_clips_as_its_batch_does(timed, capsys, monkeypatch):
    """The column was batch * 4 / cpu s, camera views: 80.0 for 8 clips in 0.4 s."""
    monkeypatch.setattr(sys, "argv", ["bench_extractors.py", "i3d"])
    timed.main()
    head, row = capsys.readouterr().out.splitlines()[1:3]
    assert head.split()[-1] == "clips/cpu-s" and row.split()[0] == "i3d"
    assert row.split()[-1] == "20.0"


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--repeats", "0"], "argument --repeats: must be positive, got 0"),
        (["--threads", "0"], "argument --threads: must be 1..1024, got 0"),
        (["--samples", "-1"], "argument --samples: must be positive, got -1"),
        (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
        (["nosuch"], "unknown extractor 'nosuch' (known: "),
        (["i3d", "i3d"], "i3d named more than once"),
    ],
)
def test_bench_extractors_refuses_a_bad_flag_in_one_line(timed, capsys, monkeypatch, argv, says):
    """--repeats 0 was a StatisticsError, --threads 0 a RuntimeError, an unknown name an
    UnknownExtractorError: tracebacks."""
    assert says in exits_2(timed.main, capsys, monkeypatch, "bench_extractors.py", argv)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--n", "0"], "argument --n: must be positive, got 0"),
        (["--n", "-3"], "argument --n: must be positive, got -3"),
        (["--batch-size", "0"], "argument --batch-size: must be 1..1048576, got 0"),
        (["--workers", "-1"], "argument --workers: must be 0..1024, got -1"),
        (["--epochs", "0"], "argument --epochs: must be positive, got 0"),
    ],
)
def test_bench_dataset_refuses_a_bad_flag_in_one_line(capsys, monkeypatch, tmp_path, argv, says):
    """--n 0 was a GenerationError traceback, --batch-size 0 a ValueError one."""
    main = script("bench_dataset").main
    argv += ["--data", str(tmp_path / "data")]
    assert says in exits_2(main, capsys, monkeypatch, "bench_dataset.py", argv)
    assert not (tmp_path / "data").exists()


def test_bench_dataset_refuses_a_folder_of_another_layout(capsys, monkeypatch, tmp_path):
    """--format shards on a pt folder printed figures labelled "shards", read from pt."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    args = ["--n", "4", "--out", str(tmp_path / "pt"), "--config", str(tmp_path / "tiny.yaml")]
    assert generate([*args, "--workers", "1", "--quiet"]) == 0
    argv = ["--data", str(tmp_path / "pt"), "--format", "shards", "--workers", "0"]
    monkeypatch.setattr(sys, "argv", ["bench_dataset.py", *argv, "--epochs", "1"])
    assert script("bench_dataset").main() == 2
    assert one_error_line(capsys) == (
        f"bench_dataset.py: error: {tmp_path / 'pt'} holds a pt dataset, not shards"
    )
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--stimuli", "0"], "argument --stimuli: must be 1..100000, got 0"),
        (["--epochs", "0"], "argument --epochs: must be 1..100000, got 0"),
        (["--seed", "-1"], "argument --seed: must be 0..4294967295, got -1"),
        (["--epochs", "100001"], "argument --epochs: must be 1..100000, got 100001"),
    ],
)
def test_bench_saliency_refuses_a_bad_flag_in_one_line(capsys, monkeypatch, argv, says):
    """--stimuli 0 was a LayoutError traceback."""
    main = script("bench_saliency").main
    assert says in exits_2(main, capsys, monkeypatch, "bench_saliency.py", argv)


def test_bench_saliency_with_too_few_stimuli_to_split_is_one_line(capsys, tmp_path):
    """--stimuli 1 was a ConfigError traceback, then a line naming the config's val_fraction,
    which the bench has no flag for."""
    argv = ["--stimuli", "1", "--epochs", "1", "--keep", str(tmp_path)]
    assert script("bench_saliency").main(argv) == 2
    assert one_error_line(capsys) == (
        "bench_saliency.py: error: 1 stimuli leave the train or val split empty; raise --stimuli"
    )


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--n", "0"], "argument --n: must be positive, got 0"),
        (["--workers", "0"], "argument --workers: must be 1..1024, got 0"),
        (["--memory", "0", "8"], "argument --memory: must be positive, got 0"),
    ],
)
def test_bench_generator_refuses_a_bad_flag_in_one_line(capsys, monkeypatch, tmp_path, argv, says):
    main = script("bench_generator").main
    argv += ["--skip-speed", "--skip-memory", "--where", str(tmp_path)]
    assert says in exits_2(main, capsys, monkeypatch, "bench_generator.py", argv)


def test_bench_generator_measures_memory_in_the_layout_it_names_and_keeps_the_users_files(
    tmp_path, monkeypatch
):
    """``--memory-format shards`` spawned the generator without ``--format``: pt figures
    printed as shards. And it wrote WHERE/small.yaml, then deleted it, a user's own too."""
    bench = script("bench_generator")
    (tmp_path / "small.yaml").write_text("the user's\n")
    (tmp_path / "mem_8").mkdir()
    (tmp_path / "mem_8" / "theirs.txt").write_text("kept\n")
    spawned, real = [], subprocess.Popen

    def spy(cmd, **kwargs):
        spawned.append(cmd)
        assert Path(cmd[cmd.index("--config") + 1]).read_text() == bench.SMALL_CONFIG
        return real([sys.executable, "-c", "pass"], **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    bench.peak_memory(8, 1, tmp_path, "shards")
    (cmd,) = spawned
    assert cmd[cmd.index("--format") + 1] == "shards"
    assert (tmp_path / "small.yaml").read_text() == "the user's\n"
    assert (tmp_path / "mem_8" / "theirs.txt").read_text() == "kept\n"
    assert sorted(os.listdir(tmp_path)) == ["mem_8", "small.yaml"]


def test_bench_generator_disk_probe_keeps_a_users_file_of_its_name(tmp_path):
    bench = script("bench_generator")
    (tmp_path / "raw_write_probe.bin").write_text("the user's\n")
    assert bench.raw_write_speed(tmp_path, 1 << 20, block=1 << 20) > 0
    assert sorted(os.listdir(tmp_path)) == ["raw_write_probe.bin"]
    assert (tmp_path / "raw_write_probe.bin").read_text() == "the user's\n"


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--seeds", "0", "0"], "--seeds names 0 more than once"),
        (["--configs", "a/tiny.yaml", "b/tiny.yaml"], "--configs names tiny more than once"),
        (["--seeds", "-1"], "argument --seeds: must be 0..4294967295, got -1"),
        (["--epochs", "0"], "argument --epochs: must be positive, got 0"),
        (["--jobs", "0"], "argument --jobs: must be 1..1024, got 0"),
        (["--margin", "nan"], "argument --margin: expected a finite number, got 'nan'"),
        (["--alpha", "0"], "argument --alpha: must be > 0.0, got 0"),
        (["--alpha", "1"], "--alpha must be under 1"),
    ],
)
def test_bench_jepa_refuses_a_bad_or_repeated_flag_value_before_any_work(
    capsys, monkeypatch, argv, says
):
    """``--seeds 0 0`` ran two processes training into one run folder."""
    bench = script("bench_jepa")
    monkeypatch.setattr(bench, "seed_config", lambda *args: pytest.fail("went on"))
    main = lambda: bench.main(sys.argv[1:])  # noqa: E731
    assert says in exits_2(main, capsys, monkeypatch, "bench_jepa.py", argv)
