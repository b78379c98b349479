"""python -m train.parallel and its launcher against what a hostile tester found: a resume of
nothing, runs outliving a killed launcher, a summary that misreports runs, flags a resume
ignored, run paths checked too late, and inputs every run refused on its own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from train.launcher import RESERVED_NAMES, LocalLauncher, unusable_run_path
from train.summary import write_summary
from train.trajectory.cli import build_parser as trainer_parser
from train.trajectory.parallel import main, with_earlier_runs

ROOT = Path(__file__).resolve().parents[2]
PROG = "python -m train.parallel"


def err_lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def one_error(capsys) -> str:
    err = err_lines(capsys)
    assert len(err) == 1 and err[0].startswith(f"{PROG}: error: "), err
    return err[0]


def summary(out: Path) -> dict[str, dict]:
    return {r["extractor"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}


def code_of(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    """A round of one i3d run trained for 2 epochs; each test works on its own copy."""
    out = tmp_path_factory.mktemp("trained") / "runs"
    args = ["--extractors", "i3d", "--epochs", "2", "--data", str(dataset), "--workers", "0"]
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture
def round_copy(trained, tmp_path) -> Path:
    out = tmp_path / "runs"
    shutil.copytree(trained, out, symlinks=True)
    return out


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file of a round, to show that a refused command changed nothing."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# 1. --resume of an --out without runs; a launch stopped before its runs wrote config.yaml


@pytest.mark.parametrize("launcher", ["local", "slurm"])
@pytest.mark.parametrize("made", [False, True], ids=["missing", "empty"])
def test_a_resume_of_an_out_without_runs_is_one_line(tmp_path, capsys, launcher, made):
    """It divided the cores by zero runs (a traceback); with slurm it wrote 0 scripts."""
    out = tmp_path / "typo"
    if made:
        out.mkdir()
    argv = ["--resume", "--epochs", "1", "--out", str(out), "--launcher", launcher]
    assert code_of(argv) == 2
    line = one_error(capsys)
    assert "no run to continue" in line and "--extractors" in line, line
    assert ("does not exist" in line) != made, line
    assert not out.exists() or list(out.iterdir()) == []


def test_a_launch_stopped_before_its_runs_started_is_resumed_whole(
    dataset, tmp_path, capsys, monkeypatch
):
    """Stopped before any run wrote config.yaml, --resume found no run (a traceback), and one
    stopped before one of two wrote it dropped the other from the round and the summary. The
    stop's hint lacked the --extractors and --data that a resume then needs, and a run that
    had not started resumed with the default recipe, not the launch's."""
    out = tmp_path / "runs"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("fusion_dim: 48\n")

    def stopped_at_once(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalLauncher, "run", stopped_at_once)
    argv = ["--extractors", "i3d", "magvit", "--epochs", "1", "--data", str(dataset)]
    recipe_flags = ["--preset", "tiny", "--lr", "0.002", "--config", str(recipe)]
    assert main([*argv, *recipe_flags, "--out", str(out), "--workers", "0"]) == 130
    hint = err_lines(capsys)[-1]
    assert "--resume --extractors i3d magvit" in hint and f"--data={dataset}" in hint, hint
    assert not (out / "i3d" / "config.yaml").exists()
    assert set(json.loads((out / "launch.json").read_text())["runs"]) == {"i3d", "magvit"}

    seen = {}
    monkeypatch.setattr(
        LocalLauncher,
        "run_to_end",
        lambda self, prog, hint, before_start: before_start() or seen.update(self.jobs) or 0,
    )
    assert main(["--resume", "--epochs", "1", "--out", str(out)]) == 0
    assert set(seen) == {"i3d", "magvit"}
    for name, job in seen.items():
        flags = trainer_parser().parse_args(job)
        assert flags.extractor == name and flags.resume and flags.data == str(dataset), job
        assert (flags.preset, flags.lr, flags.config) == ("tiny", 0.002, recipe), job


def test_a_resume_names_a_run_that_only_got_as_far_as_its_log(
    dataset, tmp_path, capsys, monkeypatch
):
    """An --out from before launch.json: a run stopped before its config.yaml was dropped from
    the round and the summary without a word, while the other continued."""
    out = tmp_path / "runs"
    (out / "i3d").mkdir(parents=True)
    (out / "i3d" / "config.yaml").write_text(yaml.safe_dump({"data": str(dataset)}))
    (out / "magvit").mkdir()
    (out / "magvit" / "train.log").write_text("")
    seen = {}
    monkeypatch.setattr(
        LocalLauncher, "run_to_end", lambda self, *a, **k: seen.update(self.jobs) or 0
    )
    assert main(["--resume", "--epochs", "1", "--out", str(out)]) == 2
    assert one_error(capsys).endswith("magvit: a new run needs --data (or --render)")
    assert main(["--resume", "--epochs", "1", "--data", str(dataset), "--out", str(out)]) == 0
    assert set(seen) == {"i3d", "magvit"}


DAMAGED_LAUNCH = {
    "not JSON": b"{",
    "a list": b"[1]",
    "a run's data a list": json.dumps({"runs": {"i3d": {"data": [1]}}}).encode(),
    "a FIFO": None,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content", DAMAGED_LAUNCH.values(), ids=DAMAGED_LAUNCH)
def test_a_damaged_launch_record_is_one_line_naming_it(tmp_path, capsys, content):
    out = tmp_path / "runs"
    out.mkdir()
    record = out / "launch.json"
    if content is None:
        os.mkfifo(record)  # reading it would block for ever
    else:
        record.write_bytes(content)
    assert main(["--resume", "--epochs", "1", "--out", str(out)]) == 2
    assert str(record) in one_error(capsys)


# 2. a launcher killed, hung up on or stopped twice; a run's error line


CHILD = """
import os, pathlib, signal, sys, time
run = pathlib.Path(sys.argv[1])
if run.name.startswith("watching"):  # watches its launcher, stops on SIGTERM: python -m train
    from train.launcher import end_with_launcher
    end_with_launcher(grace=1)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
run.mkdir(parents=True, exist_ok=True)
signal.signal(signal.SIGINT, signal.default_int_handler)
if run.name.endswith("stubborn"):  # ignores the stop, as a run stuck in a C call would
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if run.name == "watching-stubborn" and os.fork() == 0:  # a data-loading worker, in its group
    time.sleep(60)
    os._exit(0)
(run / "pid").write_text(str(os.getpid()))
try:
    time.sleep(float(sys.argv[2]))
except KeyboardInterrupt:
    print("interrupted: its own stop line", file=sys.stderr)
    sys.exit(130)
"""

LAUNCHER = """
import json, sys
from pathlib import Path
from train.launcher import RESERVED_NAMES, LocalLauncher, unusable_run_path
out, seconds = Path(sys.argv[1]), sys.argv[2]
def summarise(out, statuses):
    rows = {s.name: s.status for s in statuses}
    (out / "statuses.json").write_text(json.dumps(rows))
    (out / "summary.md").write_text(str(rows))
    return []
jobs = {name: [str(out / name), seconds] for name in sys.argv[3:]}
launcher = LocalLauncher(out, jobs, 0, 1, module="child", summarise=summarise)
sys.exit(launcher.run_to_end("prog", "prog: stopped all runs"))
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left to a container's init that does not reap is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Round:
    """A launcher of ``names`` (child processes that sleep ``seconds``) in its own session,
    and, when the test ends, no process of it left behind."""

    def __init__(self, tmp_path: Path, names: list[str], seconds: float = 60, **popen) -> None:
        (tmp_path / "child.py").write_text(CHILD)
        self.out = tmp_path / "runs"
        self.out.mkdir()
        env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
        self.names = names
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(self.out), str(seconds), *names],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **popen,
        )
        self.pids: list[int] = []

    def started(self) -> list[int]:
        pidfiles = [self.out / n / "pid" for n in self.names]
        assert wait_until(lambda: all(p.is_file() and p.read_text() for p in pidfiles), 60)
        self.pids = [int(p.read_text()) for p in pidfiles]
        return self.pids

    def finish(self, seconds: float = 30) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=seconds)
        return self.proc.returncode, err

    def statuses(self) -> dict[str, str]:
        return json.loads((self.out / "statuses.json").read_text())

    def close(self) -> None:
        for pid in [*self.pids, self.proc.pid]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.communicate()


@pytest.fixture
def launch_round(tmp_path):
    rounds = []

    def start(names: list[str], seconds: float = 60, **popen) -> Round:
        # SIGHUP as in a terminal: a test run under nohup would pass its ignoring on
        popen.setdefault("preexec_fn", lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
        rounds.append(Round(tmp_path, names, seconds, **popen))
        return rounds[-1]

    yield start
    for r in rounds:
        r.close()


def workers(pid: int) -> list[int]:
    """The processes of ``pid``'s process group but itself."""
    return [p.pid for p in psutil.process_iter() if p.pid != pid and _group(p.pid) == pid]


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.timeout(90)
def test_runs_end_when_their_launcher_is_killed(launch_round):
    """kill -9 (or the OOM killer) cannot be caught: the runs trained on as orphans, and wrote
    into the logs of the runs a later --resume started; the kernel's SIGINT then left one that
    ignored it (or never got back to Python to handle it) training."""
    r = launch_round(["calm", "stubborn"])
    pids = r.started()
    r.proc.kill()
    assert wait_until(lambda: not any(map(alive, pids)), 10), "a run outlived its launcher"


@pytest.mark.timeout(90)
def test_a_run_watching_its_killed_launcher_stops_and_says_so_in_its_log(launch_round):
    """A run that calls end_with_launcher (python -m train) stops as its launcher would
    have stopped it: its stop line, which went to the dead launcher's pipe, is in its log
    after one naming the launcher; one that ignores the stop is killed with its workers."""
    r = launch_round(["watching", "watching-stubborn"])
    pids = [*r.started(), *workers(r.pids[1])]
    r.pids = pids  # all ended when the test ends
    r.proc.kill()
    assert len(pids) == 3 and wait_until(lambda: not any(map(alive, pids)), 10), pids
    gone = f"the launcher (pid {r.proc.pid}) is gone: stopping this run"
    log = (r.out / "watching" / "train.log").read_text().splitlines()
    assert log == [gone, "interrupted: its own stop line"], log
    assert (r.out / "watching-stubborn" / "train.log").read_text().splitlines() == [gone]


def test_a_run_not_started_by_a_launcher_watches_nothing(monkeypatch):
    """A process that inherits the launcher's pid in its environment, but is not its child
    (a run's own subprocess), must not take its parent's death for the launcher's."""
    import threading

    from train.launcher import LAUNCHER_PID, end_with_launcher

    monkeypatch.setenv(LAUNCHER_PID, str(os.getpid()))  # pytest's parent is not this process
    end_with_launcher()
    assert "end-with-launcher" not in [t.name for t in threading.enumerate()]


@pytest.mark.timeout(90)
def test_sighup_stops_every_run_like_sigterm(launch_round):
    """Closing the terminal killed the launcher alone (exit 129, no summary); its runs went on."""
    r = launch_round(["a", "b"])
    pids = r.started()
    r.proc.send_signal(signal.SIGHUP)
    code, err = r.finish()
    assert code == 130 and err.strip().endswith("prog: stopped all runs"), err
    assert not any(map(alive, pids))
    assert r.statuses() == {"a": "interrupted", "b": "interrupted"}


@pytest.mark.timeout(90)
def test_sighup_under_nohup_leaves_the_round_running(launch_round):
    """A launcher started under nohup was asked to outlive the terminal."""

    def nohup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    r = launch_round(["a"], seconds=1, preexec_fn=nohup)
    r.started()
    r.proc.send_signal(signal.SIGHUP)
    code, err = r.finish()
    assert code == 0 and r.statuses() == {"a": "done"}, err


@pytest.mark.timeout(90)
def test_a_second_stop_kills_a_run_that_ignores_the_first(launch_round):
    """The second Ctrl-C cut the stop's wait short: "stopped all runs", exit 130, no summary,
    and the run that had not stopped trained on."""
    r = launch_round(["calm", "stubborn"])
    calm, stubborn = r.started()
    r.proc.send_signal(signal.SIGINT)
    assert wait_until(lambda: not alive(calm), 10), "the first stop did not reach the runs"
    time.sleep(0.3)
    assert alive(stubborn) and r.proc.poll() is None  # the launcher waits for it
    r.proc.send_signal(signal.SIGINT)
    code, err = r.finish()
    assert code == 130 and not alive(stubborn), err
    assert "killed stubborn, still running after a second stop" in err, err
    assert r.statuses() == {"calm": "interrupted", "stubborn": "interrupted"}


SPEAKER = """
import sys
from pathlib import Path
run = Path(sys.argv[1])
run.mkdir(parents=True, exist_ok=True)
if run.name == "orphaned":  # its error, then a line of another process in its log
    print("python -m train: error: the run's own error", file=sys.stderr, flush=True)
    with open(run / "train.log", "a") as log:
        log.write("epoch 3/3: loss 3.6294 val acc 0.500 (written by an orphan)\\n")
    sys.exit(2)
raise RuntimeError("bad crashed\\nsecond line | with pipe")
"""


def test_a_failed_runs_error_is_its_own_not_the_logs_last_line(tmp_path, monkeypatch):
    """The error was the log's last line: an orphan's epoch line, or a two-line exception's
    second line."""
    (tmp_path / "speaker.py").write_text(SPEAKER)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = tmp_path / "runs"
    jobs = {name: [str(out / name)] for name in ("orphaned", "raising")}
    launcher = LocalLauncher(out, jobs, 0, 1, module="speaker", summarise=lambda o, s: [])
    launcher.run()
    errors = {name: st.error for name, st in launcher.statuses.items()}
    assert errors == {
        "orphaned": "exit status 2: python -m train: error: the run's own error",
        "raising": "exit status 1: RuntimeError: bad crashed\\nsecond line | with pipe",
    }
    assert "Traceback" in (out / "raising" / "train.log").read_text()  # still all in the log


DIES_OF_SIGINT = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)  # as before Python set its own handler
pathlib.Path(sys.argv[1], "ready").write_text("")
time.sleep(float(sys.argv[2]))
"""


def test_a_run_the_launcher_stopped_is_interrupted_not_failed(tmp_path, monkeypatch, capsys):
    """A run just started, stopped by the launcher's own SIGINT, was "failed (killed by
    signal 2)"."""
    (tmp_path / "diesofsigint.py").write_text(DIES_OF_SIGINT)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = tmp_path / "runs"
    jobs = {"fast": [str(out / "fast"), "0"], "slow": [str(out / "slow"), "60"]}
    calls = []

    def summarise(out, statuses):
        calls.append([s.status for s in statuses])
        if len(calls) == 1:  # the fast run has ended: a stop while the slow one runs
            assert wait_until((out / "slow" / "ready").exists, 30)  # SIGINT's default set
            raise KeyboardInterrupt
        return []

    launcher = LocalLauncher(out, jobs, 0, 1, module="diesofsigint", summarise=summarise)
    assert launcher.run_to_end("prog", "prog: stopped") == 130
    assert launcher.statuses["slow"].status == "interrupted", launcher.statuses["slow"]
    assert launcher.statuses["slow"].returncode == -signal.SIGINT
    assert calls[-1] == ["done", "interrupted"]


# 4. the summary: unfinished earlier runs, --epochs below what finished, finished runs again


def earlier_run(out: Path, name: str, asked: int, finished: int) -> None:
    run = out / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": "/nowhere", "epochs": asked}))
    (run / "results.json").write_text(json.dumps({"epochs": finished, "val_accuracy": 0.5}))


def test_an_earlier_run_resumed_to_more_epochs_and_stopped_is_unfinished(tmp_path):
    """It was listed "done" with the results.json of its fewer epochs before."""
    earlier_run(tmp_path, "complete", asked=1, finished=1)
    earlier_run(tmp_path, "extended", asked=4, finished=1)
    rows = {r["extractor"]: r for r in write_summary(tmp_path, with_earlier_runs(tmp_path, []))}
    assert rows["complete"]["status"] == "done"
    assert rows["extended"]["status"] == "unfinished" and rows["extended"]["epochs"] == 1
    assert (
        "| extended | unfinished (numbers from epoch 1) |" in (tmp_path / "summary.md").read_text()
    )


def test_resume_with_fewer_epochs_than_finished_is_refused_up_front(round_copy, capsys):
    """Each run refused it on its own: every finished run became "failed", exit 1, and the
    correct summary was overwritten."""
    before = snapshot(round_copy)
    assert main(["--resume", "--epochs", "1", "--out", str(round_copy)]) == 2
    line = one_error(capsys)
    assert "--epochs 1 is fewer than the 2 epochs" in line and "i3d" in line, line
    assert snapshot(round_copy) == before


def test_a_resume_leaves_runs_that_finished_their_epochs_alone(round_copy, capsys):
    """They were started again; one failing its checks there (a full disk) was reported
    "failed" beside its intact results."""
    before = snapshot(round_copy)
    assert main(["--resume", "--epochs", "2", "--out", str(round_copy)]) == 0
    assert "i3d: finished already (--epochs 2), not started again" in capsys.readouterr().out
    after = snapshot(round_copy)
    assert {k: v for k, v in after.items() if not k.startswith(("summary", "comparison"))} == {
        k: v for k, v in before.items() if not k.startswith(("summary", "comparison"))
    }
    assert summary(round_copy)["i3d"]["status"] == "done"


# 5. a resume that changes what the runs learn


@pytest.mark.parametrize(
    "flags, change",
    [
        (["--lr", "0.5"], "lr"),
        (["--batch-size", "2"], "batch_size"),
        (["--seed", "7"], "seed"),
        (["--preset", "base"], "preset"),
        (["--config", "RECIPE"], "fusion_dim 128 -> 48"),
    ],
    ids=["lr", "batch-size", "seed", "preset", "config"],
)
def test_a_resume_refuses_a_change_of_recipe(round_copy, tmp_path, capsys, flags, change):
    """The flags were dropped without a word: the runs trained on with their old settings."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("fusion_dim: 48\n")
    flags = [str(recipe) if f == "RECIPE" else f for f in flags]
    before = snapshot(round_copy)
    assert main(["--resume", "--epochs", "3", *flags, "--out", str(round_copy)]) == 2
    line = one_error(capsys)
    assert f"i3d: --resume cannot change {change}" in line, line
    assert snapshot(round_copy) == before


def test_a_resume_takes_the_launchs_own_recipe_again(round_copy, monkeypatch):
    """The same command plus --resume, as the README and the stop's hint say."""
    used = yaml.safe_load((round_copy / "i3d" / "config.yaml").read_text())
    monkeypatch.setattr(LocalLauncher, "run_to_end", lambda self, *a, **k: 0)
    flags = ["--lr", str(used["lr"]), "--seed", str(used["seed"]), "--preset", used["preset"]]
    assert main(["--resume", "--epochs", "3", *flags, "--out", str(round_copy)]) == 0


# 11. run paths checked before anything starts


def blocked(out: Path, how: str) -> Path:
    """Something in the way of the magvit run."""
    run = out / "magvit"
    if how == "file":
        out.mkdir(parents=True)
        run.write_text("notes")
        return run
    if how == "dangling folder link":
        out.mkdir(parents=True)
        run.symlink_to(out / "nowhere")
        return run
    run.mkdir(parents=True)
    log = run / "train.log"
    if how == "looping log link":
        (run / "loopA").symlink_to("loopB")
        (run / "loopB").symlink_to("loopA")
        log.symlink_to("loopA")
    elif how == "dangling log link":
        log.symlink_to("nowhere.log")
    else:  # a log link out of the run folder
        (out.parent / "elsewhere.log").write_text("")
        log.symlink_to(out.parent / "elsewhere.log")
    return log


@pytest.mark.parametrize(
    "how",
    ["file", "dangling folder link", "looping log link", "dangling log link", "log link out"],
)
def test_a_run_path_in_the_way_is_refused_before_any_run_starts(dataset, tmp_path, capsys, how):
    """A looping or dangling train.log link, or a file where a run folder goes, was found when
    that run's turn came: the runs already started were killed and reported "failed"."""
    out = tmp_path / "runs"
    where = blocked(out, how)
    argv = ["--extractors", "i3d", "magvit", "--epochs", "1", "--data", str(dataset)]
    assert main([*argv, "--out", str(out), "--workers", "0"]) == 2
    line = one_error(capsys)
    assert str(where) in line and ("not a folder" in line or "not a regular file" in line), line
    assert not (out / "i3d").exists(), "a run started"


def test_a_run_named_slurm_is_refused_before_any_run_starts(dataset, tmp_path, capsys, monkeypatch):
    """A plugin extractor named slurm trained in OUT/slurm, where --launcher slurm writes."""
    import extractors

    monkeypatch.setattr(extractors, "list_extractors", lambda: ["i3d", "slurm"])
    out = tmp_path / "runs"
    argv = ["--extractors", "i3d", "slurm", "--epochs", "1", "--data", str(dataset)]
    assert main([*argv, "--out", str(out)]) == 2
    line = one_error(capsys)
    assert "run 'slurm' is taken by what the launcher writes beside the runs" in line, line
    assert not out.exists(), "a run started"


@pytest.mark.parametrize("name", RESERVED_NAMES + ("Summary.MD",))
def test_no_launcher_file_can_be_a_run_folder(tmp_path, name):
    assert "is taken by what the launcher writes" in unusable_run_path(tmp_path, name)


# 12. inputs every run would refuse on its own


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    """16 samples: under the 20 the splits need."""
    from tests.train.conftest import small_clips_dataset

    return small_clips_dataset(tmp_path_factory.mktemp("small"), 16)


REFUSED = {  # flags (a recipe as its YAML text), and what the one line says
    "workers": (["--workers", "5000"], "--workers: must be 0..1024, got 5000"),
    "cuda": (["--device", "cuda"], "torch sees no CUDA device"),
    "small dataset": ([], "holds 16 samples; the splits need at least 20"),
    "recipe value": (["--config", "lr: -1"], "lr: Input should be greater than 0"),
    "recipe type": (["--config", "fusion_layers: x"], "fusion_layers: 'x' is not a whole number"),
}


@pytest.mark.parametrize("flags, expected", REFUSED.values(), ids=REFUSED)
def test_inputs_every_run_refuses_are_one_line_before_any_starts(
    dataset, small_dataset, tmp_path, capsys, flags, expected
):
    """Each became a "failed" run, exit 1, leaving run folders that hold only train.log."""
    import torch

    if "cuda" in flags and torch.cuda.is_available():
        pytest.skip("a GPU is here")
    if "--config" in flags:
        (tmp_path / "recipe.yaml").write_text(flags[1] + "\n")
        flags = ["--config", str(tmp_path / "recipe.yaml")]
    out = tmp_path / "runs"
    data = small_dataset if "16 samples" in expected else dataset
    argv = [
        "--extractors",
        "i3d",
        "magvit",
        "--epochs",
        "1",
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    assert code_of([*argv, "--workers", "0", *flags]) == 2
    line = one_error(capsys)
    assert expected in line, line
    assert not out.exists() or list(out.iterdir()) == [], "a run started"


def test_paths_starting_with_a_dash_reach_the_run_as_paths(dataset, tmp_path, monkeypatch):
    """``--data -x`` reached the trainer as two options, which it refused, every run."""
    shutil.copytree(dataset, tmp_path / "-data")
    monkeypatch.chdir(tmp_path)
    seen = {}
    monkeypatch.setattr(
        LocalLauncher, "run_to_end", lambda self, *a, **k: seen.update(self.jobs) or 0
    )
    assert main(["--extractors", "i3d", "--epochs", "1", "--data=-data", "--out=-runs"]) == 0
    flags = trainer_parser().parse_args(seen["i3d"])
    assert (flags.data, flags.out) == ("-data", Path("-runs/i3d"))


@pytest.mark.parametrize("module", ["train.trajectory.cli", "train.saliency.__main__"])
def test_every_trainer_a_launcher_starts_watches_it_first(module, monkeypatch):
    """The kernel's signal at the launcher's death is SIGKILL: a trainer that does not watch
    its launcher itself is killed where it stands, mid-save, with no stop line in its log."""
    import importlib

    trainer = importlib.import_module(module)
    watched = []
    monkeypatch.setattr(trainer, "end_with_launcher", lambda: watched.append(True))
    with pytest.raises(SystemExit):
        trainer.main(["--no-such-flag"])
    assert watched == [True]
