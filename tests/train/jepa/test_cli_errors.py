"""Bad input to the three JEPA commands: one line on stderr, the right exit status, no traceback,
and nothing already written is lost."""

import pytest
import torch
import yaml

from train.jepa import download, evaluate, evaluation
from train.jepa import train as trainer


def _config(tmp_path, jepa_files, **overrides) -> str:
    path = tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(jepa_files.tiny_config(tmp_path, **overrides)))
    return str(path)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def _status(main, argv: list[str]) -> int:
    """``main``'s exit status, returned or raised by argparse."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize(
    "main, argv",
    [
        (trainer.main, ["--config"]),
        (trainer.main, ["--bogus"]),
        (evaluate.main, ["--checkpoint", "x.pt"]),
        (evaluate.main, ["--checkpoint", "x.pt", "--dataset", "mnist"]),
        (evaluate.main, ["--checkpoint", "x.pt", "--dataset", "synthetic", "--k", "0"]),
        (download.main, ["mnist"]),
        (download.main, []),
    ],
)
def test_bad_arguments_are_one_line_exit_2(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    _one_line(capsys)


def test_a_finished_run_is_not_overwritten_without_resume_or_force(tmp_path, jepa_files, capsys):
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    last = tmp_path / "run" / "last.pt"
    before = last.read_bytes(), (tmp_path / "run" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert trainer.main(["--config", config, "--quiet"]) == 2
    assert "--resume" in _one_line(capsys)
    assert (last.read_bytes(), (tmp_path / "run" / "metrics.jsonl").read_text()) == before
    # --force starts over: the same seed gives the same weights, and the log holds one run
    assert trainer.main(["--config", config, "--quiet", "--force"]) == 0
    epochs = (tmp_path / "run" / "metrics.jsonl").read_text().count('"level_loss"')
    assert epochs == 1
    with pytest.raises(SystemExit):
        trainer.main(["--config", config, "--resume", "--force"])


def _run_bytes(run) -> dict:
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.mark.parametrize(
    "failure, code",
    [
        ("missing data", 2),
        ("stopped in the first epoch", 130),
        ("damaged image in the first epoch", 2),
    ],
)
def test_force_keeps_the_old_run_until_the_new_one_has_a_checkpoint(
    tmp_path, jepa_files, capsys, monkeypatch, failure, code
):
    """Before, --force deleted the old run first: a typo in --data-path, a damaged image or
    Ctrl-C in the new run's first epoch left neither run."""
    from train.jepa.datasets import DamagedImage

    run = tmp_path / "run"
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    (run / "notes.txt").write_text("mine")
    before = _run_bytes(run)
    argv = ["--config", config, "--quiet", "--force", "--epochs", "2"]
    if failure == "missing data":
        argv += ["--dataset", "cifar10", "--data-path", str(tmp_path / "typo")]
    else:
        error = KeyboardInterrupt() if "stopped" in failure else DamagedImage("x.jpg is damaged")

        def fails(*args, **kwargs):
            raise error

        monkeypatch.setattr(trainer.Pretraining, "train_epoch", fails)
    capsys.readouterr()
    assert trainer.main(argv) == code
    _one_line(capsys)
    assert _run_bytes(run) == before
    monkeypatch.undo()
    assert trainer.main(["--config", config, "--quiet", "--resume", "--epochs", "2"]) == 0


def test_force_drops_the_old_run_once_the_new_one_has_its_first_checkpoint(
    tmp_path, jepa_files, monkeypatch
):
    run = tmp_path / "run"
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    old_events = sorted((run / "tensorboard").iterdir())
    (run / "eval_cifar10.json").write_text('{"checkpoint": "last.pt"}')  # the old run's scores
    seen = []

    def second_epoch_sees(self, epoch):
        if epoch == 1:  # after the new run's first last.pt
            seen.append(sorted(p.name for p in run.iterdir()))
            raise KeyboardInterrupt
        return train_epoch(self, epoch)

    train_epoch = trainer.Pretraining.train_epoch
    monkeypatch.setattr(trainer.Pretraining, "train_epoch", second_epoch_sees)
    argv = ["--config", config, "--quiet", "--force", "--epochs", "2"]
    assert trainer.main(argv) == 130  # stopped in epoch 2: the new run's epoch 1 is kept
    assert seen and ".replaced" not in seen[0]
    assert torch.load(run / "last.pt", weights_only=True)["config"]["optim"]["epochs"] == 2
    assert not any(p in old_events for p in (run / "tensorboard").iterdir())
    assert not (run / "eval_cifar10.json").exists(), "it would name the new last.pt"


def test_a_run_set_aside_by_a_killed_force_start_is_put_back(tmp_path, jepa_files, capsys):
    """A kill (no handler runs) between setting the old run aside and the new one's first
    last.pt: the next command on the folder puts it back."""
    from train.jepa.start_over import prepare_run_folder

    run = tmp_path / "run"
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    before = _run_bytes(run)
    prepare_run_folder(run, resume=False, force=True)  # what --force did before the kill
    (run / "config.yaml").write_text("the new run's")  # and what the new run wrote
    (run / "tensorboard" / "events.out.tfevents.new").write_bytes(b"new")
    assert not (run / "last.pt").exists()
    capsys.readouterr()
    assert trainer.main(["--config", config, "--quiet", "--resume", "--epochs", "2"]) == 0
    assert "put back" in capsys.readouterr().err
    assert not (run / ".replaced").exists()
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2
    assert (run / "tensorboard").exists() and not (
        run / "tensorboard" / "events.out.tfevents.new"
    ).exists()
    assert set(before) <= set(_run_bytes(run))


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a checkpoint"])
def test_resume_and_evaluate_refuse_a_damaged_checkpoint(tmp_path, jepa_files, capsys, damage):
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    last = tmp_path / "run" / "last.pt"
    data = last.read_bytes()
    if damage == "empty":
        last.write_bytes(b"")
    elif damage == "truncated":
        last.write_bytes(data[: len(data) // 2])
    else:
        torch.save({"model": {}}, last)
    damaged = last.read_bytes()
    capsys.readouterr()
    assert trainer.main(["--config", config, "--quiet", "--resume"]) == 1
    assert str(last) in _one_line(capsys)
    assert last.read_bytes() == damaged  # left for the user to look at
    assert evaluate.main(["--checkpoint", str(last), "--dataset", "synthetic"]) == 1
    assert str(last) in _one_line(capsys)


def test_a_checkpoint_of_another_architecture_is_one_line(tmp_path, jepa_files, capsys):
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    wider = _config(tmp_path, jepa_files, optim={"epochs": 2})
    raw = yaml.safe_load(open(wider))
    raw["model"]["embed_dim"] = 48
    open(wider, "w").write(yaml.safe_dump(raw))
    capsys.readouterr()
    # a config of another model is refused before the checkpoint's weights are read
    assert trainer.main(["--config", wider, "--quiet", "--resume"]) == 2
    assert "cannot change model.embed_dim 32 -> 48" in _one_line(capsys)
    # resume and evaluate build the network from the checkpoint's config: make that config lie
    last = tmp_path / "run" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["config"]["model"]["depth"] = 3
    torch.save(state, last)
    deeper = _config(tmp_path, jepa_files, optim={"epochs": 2}, model={"depth": 3})
    assert trainer.main(["--config", deeper, "--quiet", "--resume"]) == 1
    assert "another architecture" in _one_line(capsys)
    assert evaluate.main(["--checkpoint", str(last), "--dataset", "synthetic"]) == 1
    assert "another architecture" in _one_line(capsys)


@pytest.mark.parametrize("flag", ["--image-size", "--epochs", "--batch-size"])
def test_zero_overrides_are_refused(tmp_path, jepa_files, capsys, flag):
    config = _config(tmp_path, jepa_files)
    assert _status(trainer.main, ["--config", config, flag, "0"]) == 2
    assert f"argument {flag}: must be" in _one_line(capsys)
    assert not (tmp_path / "run").exists()


EVALUATE_ARGS = ["--checkpoint", "x.pt", "--dataset", "synthetic"]
COUNT_FLAGS = {
    "train.jepa": ["--epochs", "--batch-size", "--image-size", "--threads"],
    "train.jepa.evaluate": ["--k", "--probe-iters", "--batch-size", "--num-workers"],
}


@pytest.mark.parametrize(
    "command, flag", [(command, flag) for command, flags in COUNT_FLAGS.items() for flag in flags]
)
def test_a_count_flag_that_is_no_whole_number_says_so(command, flag, capsys):
    """As python -m train's and train.saliency's: it was argparse's "invalid int value"."""
    if command == "train.jepa":
        status = _status(trainer.main, ["--config", "c.yaml", flag, "3.0"])
    else:
        status = _status(evaluate.main, [*EVALUATE_ARGS, flag, "3.0"])
    assert status == 2
    assert f"argument {flag}: expected a whole number, got '3.0'" in _one_line(capsys)


def test_an_infinite_temperature_is_refused(capsys):
    """It was taken, and reached the k-NN's weights."""
    assert _status(evaluate.main, [*EVALUATE_ARGS, "--temperature", "inf"]) == 2
    assert "argument --temperature: expected a finite number" in _one_line(capsys)


HUGE = 10**30


@pytest.mark.parametrize(
    "where, said",
    [
        ("--epochs", f"argument --epochs: must be 1..100000, got {HUGE}"),
        ("config", "optim.epochs: Input should be less than or equal to 100000"),
    ],
)
@pytest.mark.timeout(60)  # before the bound, 1e30 epochs trained for ever
def test_epochs_past_the_bound_are_refused(tmp_path, jepa_files, capsys, where, said):
    """As in the other trainers (trajkit.cli.MAX_EPOCHS): 1e30 epochs trained for ever."""
    config = _config(
        tmp_path, jepa_files, **({"optim": {"epochs": HUGE}} if where == "config" else {})
    )
    flags = ["--epochs", str(HUGE)] if where == "--epochs" else []
    assert _status(trainer.main, ["--config", config, "--quiet", *flags]) == 2
    assert said in _one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_run_folder_named_with_a_newline_in_the_config_is_refused(tmp_path, jepa_files, capsys):
    """As --out "o\\nx" is; before, the run made a folder named over two lines."""
    config = _config(tmp_path, jepa_files, run={"out": str(tmp_path / "o\nx")})
    assert trainer.main(["--config", config, "--quiet"]) == 2
    assert "run.out: " in _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0.yaml"]


def test_a_non_finite_loss_stops_in_one_line_and_keeps_the_last_epoch(
    tmp_path, jepa_files, monkeypatch, capsys
):
    """Targets gone NaN in the second epoch: before, the NaN weights reached the collapse
    watch, whose RankMe raised a traceback at the epoch's end."""
    config = _config(tmp_path, jepa_files)
    real, calls = trainer.forward_target, []

    def nan_in_epoch_two(encoder, images, levels):
        targets, features = real(encoder, images, levels)
        calls.append(1)
        if len(calls) > steps_per_epoch:
            targets = [torch.full_like(t, float("nan")) for t in targets]
        return targets, features

    assert trainer.main(["--config", config, "--quiet", "--epochs", "1"]) == 0
    steps_per_epoch = len(calls)
    first = (tmp_path / "run" / "last.pt").read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(trainer, "forward_target", nan_in_epoch_two)
    calls.clear()
    assert trainer.main(["--config", config, "--quiet", "--resume", "--epochs", "2"]) == 1
    note, err = capsys.readouterr().err.strip().splitlines()  # the resume's note, the error
    assert note.startswith("resuming") and err.startswith("error: non-finite loss (nan) at epoch 2")
    assert "last.pt holds the last finished epoch" in err, err
    assert (tmp_path / "run" / "last.pt").read_bytes() == first


def test_a_full_disk_is_one_line_and_resume_goes_on(
    tmp_path, jepa_files, disk_full_after_first_last_pt, capsys
):
    from tests.train.conftest import assert_stopped_on_the_full_disk

    config = _config(tmp_path, jepa_files)
    with disk_full_after_first_last_pt():
        assert trainer.main(["--config", config, "--quiet"]) == 1
    assert_stopped_on_the_full_disk(capsys, tmp_path / "run")
    assert trainer.main(["--config", config, "--quiet", "--resume"]) == 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 2


def test_a_full_disk_at_tensorboard_s_first_write_names_its_folder(
    tmp_path, jepa_files, tensorboard_disk_full, capsys
):
    """The writer is made before the first epoch: the line said that last.pt held the last
    finished epoch, and there was none."""
    from tests.train.conftest import NO_EPOCH_FINISHED, assert_stopped_naming_tensorboard

    run = tmp_path / "run"
    assert trainer.main(["--config", _config(tmp_path, jepa_files), "--quiet"]) == 1
    line = assert_stopped_naming_tensorboard(capsys, run)
    assert line.endswith(NO_EPOCH_FINISHED.format(run=run)), line


@pytest.mark.parametrize(
    ("stop", "code", "said"),
    [
        (KeyboardInterrupt(), 130, "interrupted: nothing was written"),  # Ctrl-C, or SIGTERM
        (RuntimeError("CPU: out of memory. Tried to allocate 30.00 GiB"), 1, "out of memory"),
    ],
    ids=["stopped", "out of memory"],
)
def test_evaluate_stopped_or_out_of_memory_is_one_line(
    tmp_path, jepa_files, capsys, monkeypatch, stop, code, said
):
    """Before, a traceback (Ctrl-C, a failed allocation) or a silent 143 (SIGTERM)."""
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    capsys.readouterr()

    def stopped(*args, **kwargs):
        raise stop

    monkeypatch.setattr(evaluation, "evaluate", stopped)
    last = tmp_path / "run" / "last.pt"
    assert evaluate.main(["--checkpoint", str(last), "--dataset", "synthetic"]) == code
    assert said in _one_line(capsys)
    assert not list(last.parent.glob("eval_*.json"))


@pytest.mark.slow  # trains a run; the parts are tested fast in test_worker_errors, test_datasets
def test_a_damaged_image_read_by_a_worker_is_one_line_and_the_command_ends(tmp_path, jepa_files):
    """An ImageFolder image that does not decode, met by a DataLoader worker: the worker's
    traceback used to be the message, and the process then hung at exit."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    root = Path(__file__).resolve().parents[3]
    for split in ("train", "val"):
        for c in ("n01440764", "n01443537"):
            (tmp_path / "data" / "imagenet" / split / c).mkdir(parents=True)
            for i in range(8):
                image = Image.new("RGB", (20, 16), (i * 30, 0, 0))
                image.save(tmp_path / "data" / "imagenet" / split / c / f"{i}.JPEG")
    config = _config(
        tmp_path,
        jepa_files,
        data={"datasets": [{"kind": "imagenet"}], "num_workers": 2},
        optim={"epochs": 1, "batch_size": 8, "warmup_epochs": 0},
    )

    def run(module, *args):
        try:
            return subprocess.run(
                [sys.executable, "-m", module, *args],
                capture_output=True,
                text=True,
                timeout=180,
                cwd=root,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{module} hung after the error")

    done = run("train.jepa", "--config", config, "--quiet")
    assert done.returncode == 0, done.stderr
    for split in ("train", "val"):  # a damaged image in each split
        (tmp_path / "data" / "imagenet" / split / "n01443537" / "5.JPEG").write_bytes(b"")
    ckpt = str(tmp_path / "run" / "last.pt")
    evaluate_args = ["--checkpoint", ckpt, "--dataset", "imagenet", "--num-workers", "2"]
    for done in (  # evaluate first: --force removes the run it evaluates
        run("train.jepa.evaluate", *evaluate_args),
        run("train.jepa", "--config", config, "--quiet", "--force"),
    ):
        assert done.returncode == 2, done.stderr
        bad = tmp_path / "data" / "imagenet"
        assert done.stderr.startswith(f"error: {bad}/"), done.stderr
        assert done.stderr.endswith(
            "/n01443537/5.JPEG is not a readable image (no image format recognised); "
            "replace or remove it\n"
        )


def test_resume_of_a_finished_run_leaves_it_as_it_was(tmp_path, jepa_files, capsys):
    """Before, it rewrote results.json with ``"final": {}``, losing the last epoch's record."""
    run = tmp_path / "run"
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    before = _run_bytes(run)
    capsys.readouterr()
    assert trainer.main(["--config", config, "--quiet", "--resume"]) == 0
    assert _run_bytes(run) == before
    assert "nothing to do" in _one_line(capsys)
    # what a stop can leave is mended: a missing results.json (stopped right after the last
    # last.pt) is written from the log, and a line cut off in the log is dropped
    (run / "results.json").unlink()
    with open(run / "metrics.jsonl", "a") as log:
        log.write('{"epoch": 2, "loss": 1.1')
    assert trainer.main(["--config", config, "--quiet", "--resume"]) == 0
    assert _run_bytes(run) == before


def test_a_metrics_line_cut_off_by_a_full_disk_names_the_file_and_resume_drops_it(
    tmp_path, jepa_files, capsys, monkeypatch
):
    """Before, the error line named no file, and every --resume after it was a traceback
    (a JSONDecodeError on the cut-off line)."""
    import errno
    import json

    from train.jepa import run_log

    class DiskFillsMidWrite:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):  # half the line, then ENOSPC with no file name, as a disk does
            self.f.write(text[: len(text) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    run = tmp_path / "run"

    def filling(path, mode="r", **kwargs):
        f = open(path, mode, **kwargs)
        return DiskFillsMidWrite(f) if mode == "a" and (run / "last.pt").exists() else f

    config = _config(tmp_path, jepa_files)
    with monkeypatch.context() as m:
        m.setattr(run_log, "open", filling, raising=False)
        assert trainer.main(["--config", config, "--quiet"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("epoch")]
    assert len(errors) == 1 and f"No space left on device: {run / 'metrics.jsonl'};" in errors[0]
    assert not (run / "metrics.jsonl").read_text().endswith("\n")  # the cut-off line
    assert trainer.main(["--config", config, "--quiet", "--resume"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "step" not in r] == [1, 2]


@pytest.mark.timeout(60)
def test_resume_refuses_a_checkpoint_that_is_no_regular_file(tmp_path, jepa_files, capsys):
    """Before, a FIFO for last.pt made --resume wait for a writer for ever."""
    import os

    config = _config(tmp_path, jepa_files)
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "last.pt")
    assert trainer.main(["--config", config, "--quiet", "--resume"]) == 1
    assert _one_line(capsys) == f"error: {tmp_path / 'run' / 'last.pt'} is not a regular file"


def test_resume_over_a_last_pt_link_loop_is_one_line(tmp_path, jepa_files, capsys):
    """The loop was taken for no run: ``--resume`` started from scratch over it."""
    config = _config(tmp_path, jepa_files)
    last = tmp_path / "run" / "last.pt"
    last.parent.mkdir()
    last.symlink_to(last)
    assert trainer.main(["--config", config, "--quiet", "--resume"]) == 1
    assert _one_line(capsys) == (
        f"error: cannot read the checkpoint: Too many levels of symbolic links: {last}"
    )
    assert last.is_symlink() and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_fifo_at_metrics_jsonl_is_replaced_as_by_the_other_trainers(tmp_path, jepa_files):
    """The log was opened for appending: a FIFO there made a fresh run wait for a reader for
    ever. ``python -m train`` treats it as an empty log and replaces it; so does this one."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "metrics.jsonl")
    argv = [sys.executable, "-m", "train.jepa", "--config", config, "--quiet"]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[3]
        )
    except subprocess.TimeoutExpired:
        pytest.fail("python -m train.jepa hung on the FIFO")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "step" not in r] == [1]


def test_resume_may_move_the_datasets_and_retune_the_collapse_watch(tmp_path, jepa_files, capsys):
    """A dataset's root (where its images are) and the collapse watch's settings (it measures
    and warns, on features training computes anyway) were refused by --resume; the weights
    are those of a resume that kept them. Other images (another size) are still refused."""
    import shutil

    def config(root: str, **overrides) -> str:
        data = {"datasets": [{"kind": "synthetic", "synthetic_size": 48, "root": root}]}
        return _config(tmp_path, jepa_files, data=data, **overrides)

    assert trainer.main(["--config", config("a", optim={"epochs": 1}), "--quiet"]) == 0
    shutil.copytree(tmp_path / "run", tmp_path / "kept")
    kept = config("a", run={"out": str(tmp_path / "kept"), "log_every": 1})
    assert trainer.main(["--config", kept, "--quiet", "--resume"]) == 0
    watch = {"probe_samples": 32, "min_std_ratio": 0.1, "min_rank_ratio": 0.2}
    moved = config(str(tmp_path / "b"), collapse=watch)
    assert trainer.main(["--config", moved, "--quiet", "--resume"]) == 0
    resumed, same = (
        torch.load(tmp_path / run / "last.pt", weights_only=True) for run in ("run", "kept")
    )
    assert resumed["epoch"] == 2 and resumed["config"]["collapse"] == watch
    assert all(torch.equal(resumed["student"][k], v) for k, v in same["student"].items())
    before = _run_bytes(tmp_path / "run")
    capsys.readouterr()
    other = _config(tmp_path, jepa_files, data={"datasets": [{"kind": "synthetic"}]})
    assert trainer.main(["--config", other, "--quiet", "--resume", "--epochs", "3"]) == 2
    assert "--resume cannot change data.datasets" in _one_line(capsys)
    assert _run_bytes(tmp_path / "run") == before


def test_resume_refuses_changed_learning_settings(tmp_path, jepa_files, capsys):
    """Before, --resume took a new lr and batch size (so steps per epoch: the lr, weight-decay
    and EMA schedules jumped mid-run) and rewrote config.yaml."""
    run = tmp_path / "run"
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    assert trainer.main(["--config", config, "--quiet"]) == 0
    before = _run_bytes(run)
    capsys.readouterr()
    argv = ["--config", config, "--quiet", "--resume", "--epochs", "2"]
    assert trainer.main([*argv, "--lr", "0.5", "--batch-size", "8"]) == 2
    err = _one_line(capsys)
    assert "--resume cannot change optim.batch_size 16 -> 8, optim.lr 0.001 -> 0.5;" in err, err
    assert _run_bytes(run) == before
    # what does not change the learning may: more epochs, the data's place, the workers
    moved = _config(tmp_path, jepa_files, optim={"epochs": 1}, data={"num_workers": 1})
    argv = ["--config", moved, "--quiet", "--resume", "--epochs", "2"]
    assert trainer.main([*argv, "--data-path", str(tmp_path / "elsewhere")]) == 0
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2


def test_resume_refuses_an_imagenet_folder_of_another_size(tmp_path, jepa_files, capsys):
    """Before, a partial copy at a new --data-path was resumed on: fewer images, so fewer steps
    an epoch, and the lr, weight-decay and EMA schedules shifted without a word. A last.pt
    from before the sizes were recorded still resumes, unchecked."""
    import shutil

    run = tmp_path / "run"
    jepa_files.write_imagenet(tmp_path / "data")
    data = {"datasets": [{"kind": "imagenet"}]}
    optim = {"epochs": 1, "batch_size": 8, "warmup_epochs": 0}
    config = _config(tmp_path, jepa_files, data=data, optim=optim)
    assert trainer.main(["--config", config, "--quiet"]) == 0
    assert torch.load(run / "last.pt", weights_only=True)["dataset_sizes"] == {"imagenet": 16}
    whole, partial = tmp_path / "whole", tmp_path / "partial"
    shutil.copytree(tmp_path / "data", whole)
    shutil.copytree(tmp_path / "data", partial)
    for image in partial.glob("imagenet/train/*/[0-3].JPEG"):
        image.unlink()
    before = _run_bytes(run)
    capsys.readouterr()

    def resume(epochs: int, data) -> int:
        argv = ["--config", config, "--quiet", "--resume", "--epochs", str(epochs)]
        return trainer.main([*argv, "--data-path", str(data)])

    assert resume(2, partial) == 2
    assert _one_line(capsys) == (
        "error: --resume finds 8 images of imagenet where the run began with 16; "
        "give --data-path the run's data"
    )
    assert _run_bytes(run) == before
    assert resume(2, whole) == 0  # the same data at another place
    # a last.pt that records no sizes, as before this check, resumes on the partial copy
    state = torch.load(run / "last.pt", weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "dataset_sizes"}, run / "last.pt")
    assert resume(3, partial) == 0
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 3
    # sizes that do not fit the config: a damaged or foreign checkpoint, exit 1
    state = torch.load(run / "last.pt", weights_only=True)
    for sizes in ({"stl10": 8}, {"imagenet": torch.ones(2)}):
        torch.save({**state, "dataset_sizes": sizes}, run / "last.pt")
        capsys.readouterr()
        assert resume(4, partial) == 1
        assert _one_line(capsys) == (
            f"error: {run / 'last.pt'} holds dataset_sizes that do not fit its config"
        )


def test_a_killed_loading_worker_is_one_line_exit_1_and_last_pt_stays(tmp_path, jepa_files):
    """As the kernel's out-of-memory killer does it: SIGKILL to a data-loading worker once an
    epoch is saved. It was torch's traceback from wherever the trainer was."""
    import sys

    from tests.train.conftest import kill_a_loading_worker

    config = _config(tmp_path, jepa_files, data={"num_workers": 1}, optim={"epochs": 1000})
    last = tmp_path / "run" / "last.pt"
    command = [sys.executable, "-m", "train.jepa", "--config", config, "--quiet"]
    code, err, pid = kill_a_loading_worker(command, last)
    said = err.strip().splitlines()[-1]  # after the epoch lines
    assert code == 1 and "Traceback" not in err, err
    assert said.startswith(f"error: a data-loading worker (pid {pid}) was killed by signal 9")
    assert "lower data.num_workers or --batch-size" in said and f"{last} holds" in said, said
    assert torch.load(last, weights_only=True)["epoch"] >= 1


def test_threads_sets_torchs_threads_and_a_resume_may_change_it(tmp_path, jepa_files, monkeypatch):
    """On a machine shared with other jobs one thread trained tiny.yaml 9 times faster than
    torch's default of every core, and there was no way to ask for it."""
    config = _config(tmp_path, jepa_files, optim={"epochs": 1})
    seen = []
    monkeypatch.setattr(trainer, "set_threads", lambda n: seen.append(n))
    assert trainer.main(["--config", config, "--quiet", "--threads", "3"]) == 0
    assert seen == [3]
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["run"]["threads"] == 3
    args = ["--config", config, "--quiet", "--resume", "--epochs", "2", "--threads", "1"]
    assert trainer.main(args) == 0  # how the run executes, not what it learns
    assert seen == [3, 1]
    assert _status(trainer.main, ["--config", config, "--quiet", "--force", "--threads", "0"]) == 2
    assert seen == [3, 1]


@pytest.mark.parametrize(
    "flags", [["--data-path", "d"], ["--epochs", "1"], ["--out", "o"], ["--dataset", "digits"]]
)
def test_an_override_into_a_section_that_is_no_mapping_is_one_line(
    tmp_path, jepa_files, capsys, flags
):
    """data: [1] with --data-path, or optim: 5 with --epochs, was a TypeError traceback."""
    section = {"--epochs": "optim", "--out": "run"}.get(flags[0], "data")
    config = _config(tmp_path, jepa_files, **{section: [1]})
    assert trainer.main(["--config", config, "--quiet", *flags]) == 2
    assert (
        _one_line(capsys) == f"error: invalid config: {section}: Input should be a valid dictionary"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0.yaml"]
