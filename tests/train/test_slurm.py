"""Slurm scripts of train.trajectory.parallel and train.saliency.parallel, run under bash with stand-ins.

``sbatch`` and ``srun`` are scripts on PATH that record their arguments; the stand-in
``sbatch`` runs the batch script the way Slurm would (its log in the ``--output`` file,
whose folder must already exist, read as Slurm's filename pattern: ``%%`` a ``%``, ``%j``
the job id, any other ``%`` and letter a value of Slurm's). Hostile values (spaces, quotes, ``$(...)``, backticks,
newlines) must reach ``srun`` unchanged or be refused in one line before anything is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from train.saliency.parallel import main as saliency_parallel
from train.trajectory.parallel import main as train_parallel
from trajkit.lock import FolderLock

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "a b'c\"d$(touch PWNED)`touch PWNED2`;e"

SBATCH = """#!/bin/bash
# Records its argv (NUL-separated), then runs the script as Slurm would: log in --output.
printf '%s\\0' "$@" > "$STANDIN_DIR/sbatch.$$.argv"
for a in "$@"; do case "$a" in --output=*) log="${a#--output=}";; esac; done
log="${log//%%/$'\\x01'}"; log="${log//%j/42}"; log="${log//%[[:alpha:]]/SLURM}"
log="${log//$'\\x01'/%}"
[ -d "$(dirname "$log")" ] || { echo "sbatch: log folder $(dirname "$log") missing" >&2; exit 1; }
script="${@: -1}"
(cd "$STANDIN_DIR/submitdir" && bash "$script") >> "$log" 2>&1 || exit 1
echo "Submitted batch job 42"
"""

SRUN = """#!/bin/bash
printf '%s\\0' "$@" > "$STANDIN_DIR/srun.$$.argv"
"""


@pytest.fixture
def standins(tmp_path, monkeypatch) -> Path:
    where = tmp_path / "standins"
    (where / "bin").mkdir(parents=True)
    (where / "submitdir").mkdir()
    for name, text in (("sbatch", SBATCH), ("srun", SRUN)):
        (where / "bin" / name).write_text(text)
        (where / "bin" / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{where / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_DIR", str(where))
    return where


def recorded(where: Path, tool: str) -> list[list[str]]:
    return [p.read_bytes().split(b"\0")[:-1] for p in sorted(where.glob(f"{tool}.*.argv"))]


def decoded(calls: list[list[bytes]]) -> list[list[str]]:
    return [[a.decode() for a in call] for call in calls]


def no_injection(*roots: Path) -> None:
    for root in roots:
        assert not list(root.rglob("PWNED*")), "a value was executed by the shell"


def test_trainer_script_runs_with_hostile_paths(standins, tmp_path, in_tmp_path, capsys):
    base = tmp_path / HOSTILE
    out, data = base / "runs", base / "data"
    args = ["--extractors", "i3d", "--data", str(data), "--epochs", "3", "--out", str(out)]
    assert train_parallel([*args, "--launcher", "slurm", "--gpus-per-run", "2"]) == 0, (
        capsys.readouterr()
    )
    (sbatch,) = decoded(recorded(standins, "sbatch"))
    assert sbatch == [f"--output={out.absolute()}/i3d/slurm-%j.log", str(out / "slurm/i3d.sbatch")]
    (srun,) = decoded(recorded(standins, "srun"))
    assert srun[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=2", "-m"]  # fmt: skip
    assert srun[6:11] == ["train", "--extractor", "i3d", f"--data={data}", "--epochs"]
    assert f"--out={out / 'i3d'}" in srun and srun[-1] == "--resume"
    assert (out / "i3d" / "slurm-42.log").exists()
    no_injection(tmp_path, standins)


def test_printed_sbatch_command_runs_as_printed(standins, tmp_path, monkeypatch, capsys):
    """Without sbatch on PATH the launcher prints the commands; pasted into bash they submit."""
    out = tmp_path / HOSTILE / "runs"
    monkeypatch.setattr("train.slurm.shutil.which", lambda name: None)
    args = ["--extractors", "i3d", "magvit", "--data", "d", "--epochs", "1", "--out", str(out)]
    assert train_parallel([*args, "--launcher", "slurm"]) == 0
    hints = [x.strip() for x in capsys.readouterr().out.splitlines() if x.startswith("  sbatch")]
    assert len(hints) == 2
    for hint in hints:
        subprocess.run(["bash", "-c", hint], check=True, env=os.environ)
    assert len(recorded(standins, "srun")) == 2
    assert {p.parent.name for p in out.glob("*/slurm-42.log")} == {"i3d", "magvit"}
    no_injection(tmp_path, standins)


def test_saliency_script_runs_with_hostile_paths(standins, tmp_path, in_tmp_path, capsys):
    """The paths may hold anything; the run's name is a plain folder name (a hostile one is
    refused: test_a_newline_in_a_config_name_is_refused, tests/train/saliency/test_run_names)."""
    base = tmp_path / HOSTILE
    base.mkdir()
    config = base / "variant.yaml"
    config.write_text(yaml.safe_dump({"name": "v-1.b_2", "data": {"path": str(base / "data")}}))
    out = base / "runs"
    args = ["--configs", str(config), "--out", str(out), "--launcher", "slurm"]
    assert saliency_parallel(args) == 0, capsys.readouterr()
    (srun,) = decoded(recorded(standins, "srun"))
    assert srun[6:8] == ["train.saliency", f"--config={config}"]
    assert f"--out={out / 'v-1.b_2'}" in srun
    script = (out / "slurm" / "v-1.b_2.sbatch").read_text()
    job = next(x for x in script.splitlines() if x.startswith("#SBATCH --job-name="))
    assert job == "#SBATCH --job-name=train-saliency-v-1.b_2"
    no_injection(tmp_path, standins)


@pytest.mark.parametrize(
    "time", ["30", "30:00", "04:00:00", "2-12", "2-12:30", "2-12:30:00", "0-00:00:01"]
)
def test_every_slurm_time_format_is_accepted(standins, tmp_path, time):
    args = ["--extractors", "i3d", "--data", "d", "--epochs", "1", "--out", str(tmp_path / "r")]
    assert train_parallel([*args, "--launcher", "slurm", "--time", time]) == 0
    assert f"#SBATCH --time={time}\n" in (tmp_path / "r/slurm/i3d.sbatch").read_text()


HOSTILE_VALUES = [
    ("--time", "01:00:00\necho X"),
    ("--time", "1:00:00:00"),
    ("--time", "4h"),
    ("--time", ""),
    ("--time", "01:00:00 --wrap=x"),
    ("--data", "data\necho X"),
    ("--out", "runs\r\necho X"),
    ("--data", "data\x00x"),
]


@pytest.mark.parametrize("flag, value", HOSTILE_VALUES)
def test_trainer_refuses_values_that_would_break_the_script(
    standins, tmp_path, capsys, flag, value
):
    values = {"--data": "d", "--out": str(tmp_path / "runs"), "--time": "01:00:00", flag: value}
    if flag == "--out":
        values[flag] = str(tmp_path / value)
    args = ["--extractors", "i3d", "--epochs", "1", "--launcher", "slurm"]
    for k, v in values.items():
        args += [k, v]
    try:
        code = train_parallel(args)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not recorded(standins, "sbatch")
    assert [p.name for p in tmp_path.iterdir()] == ["standins"], "something was written"


@pytest.mark.parametrize("flag, value", [HOSTILE_VALUES[0], ("--data", "d\nx")])
def test_saliency_refuses_values_that_would_break_the_script(
    standins, tmp_path, capsys, flag, value
):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "v", "data": {"path": "d"}}))
    args = ["--configs", str(config), "--out", str(tmp_path / "runs"), "--launcher", "slurm"]
    try:
        code = saliency_parallel([*args, flag, value])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_newline_in_a_config_name_is_refused(standins, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "v\necho X", "data": {"path": "d"}}))
    args = ["--configs", str(config), "--out", str(tmp_path / "runs"), "--launcher", "slurm"]
    assert saliency_parallel(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a plain folder name" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("char", ["\x7f", "\x85", "\x9b", "\u2028", "\u2029"])
def test_a_working_folder_with_a_control_character_is_refused(
    standins, tmp_path, monkeypatch, capsys, char
):
    """The working folder reaches the script (``cd``, ``mkdir``, ``--output``) without passing
    the command line's check; a C1 control (NEL, CSI) or U+2028/U+2029 went in, and Python's
    ``splitlines`` saw four more lines than bash."""
    where = tmp_path / f"w{char}d"
    where.mkdir()
    monkeypatch.chdir(where)
    args = ["--extractors", "i3d", "--data", "d", "--epochs", "1", "--out", "runs"]
    assert train_parallel([*args, "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a control character" in err, err
    assert repr(char)[1:-1] in err and char not in err
    assert not recorded(standins, "sbatch") and not list(where.iterdir())


SLOW_SBATCH = """#!/bin/bash
# Says it is submitting, then waits for the test's go before it does.
touch "$STANDIN_DIR/submitting"
while [ ! -e "$STANDIN_DIR/go" ]; do sleep 0.05; done
echo "Submitted batch job 7"
"""


def test_a_second_command_on_a_folder_being_written_is_refused(
    standins, tmp_path, monkeypatch, capsys
):
    """Two commands writing into one --out at once interleaved: the second rewrote the
    scripts the first was submitting (its runs, --data and --epochs in the first one's jobs)
    and their launch.json records mixed."""
    (standins / "bin" / "sbatch").write_text(SLOW_SBATCH)
    out = tmp_path / "runs"
    first = subprocess.Popen(
        [sys.executable, "-m", "train.parallel", "--extractors", "i3d", "magvit", "--data=d",
         "--epochs", "1", f"--out={out}", "--launcher", "slurm"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (standins / "submitting").exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first command never reached sbatch"
            time.sleep(0.05)
        written = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
        monkeypatch.setattr("train.slurm.shutil.which", lambda name: None)  # never waits
        args = ["--extractors", "i3d", "--data=other", "--epochs", "2", f"--out={out}"]
        assert train_parallel([*args, "--launcher", "slurm"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert f"is being written by process {first.pid} on " in err, err
        now = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
        assert now == written
    finally:
        (standins / "go").touch()
        stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    assert stdout.splitlines() == ["i3d: Submitted batch job 7", "magvit: Submitted batch job 7"]
    assert json.loads((out / "launch.json").read_text())["runs"] == {
        "i3d": {"data": "d"},
        "magvit": {"data": "d"},
    }
    assert "--data=d --epochs 1 " in (out / "slurm" / "i3d.sbatch").read_text()


def test_saliency_scripts_are_not_written_into_a_held_folder(standins, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "v", "data": {"path": "d"}}))
    out = tmp_path / "runs"
    out.mkdir()
    with FolderLock(out / ".lock"):
        args = ["--configs", str(config), "--out", str(out), "--launcher", "slurm"]
        assert saliency_parallel(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"is being written by process {os.getpid()}" in err
    assert [p.name for p in out.iterdir()] == [".lock"] and not recorded(standins, "sbatch")


# ------------------------------------------------------------- the log path is a pattern


def test_a_percent_in_out_is_a_literal_percent_in_the_log_path(standins, tmp_path, capsys):
    """Slurm reads ``--output`` as a filename pattern: ``%u`` and ``%x`` in --out were its user
    and job name, so the log went to another folder (here: none, and the job failed)."""
    out = tmp_path / "p%u_%x%%j"
    args = ["--extractors", "i3d", "--data", "d", "--epochs", "1", "--out", str(out)]
    assert train_parallel([*args, "--launcher", "slurm"]) == 0, capsys.readouterr()
    (sbatch,) = decoded(recorded(standins, "sbatch"))
    escaped = str(out).replace("%", "%%")
    assert sbatch[0] == f"--output={escaped}/i3d/slurm-%j.log"
    assert (out / "i3d" / "slurm-42.log").is_file()
    script = (out / "slurm" / "i3d.sbatch").read_text()
    assert f"# submit with: sbatch --output={escaped}/i3d/slurm-%j.log " in script


def test_a_backslash_in_out_is_refused_before_anything_is_written(standins, tmp_path, capsys):
    """A backslash turns Slurm's pattern off and is dropped: the log went to another folder."""
    out = tmp_path / "a\\b"
    args = ["--extractors", "i3d", "--data", "d", "--epochs", "1", "--out", str(out)]
    assert train_parallel([*args, "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a backslash" in err, err
    assert not out.exists() and not recorded(standins, "sbatch")


# --------------------------------------------------------------------- the launcher flags


def trainer_args(tmp_path: Path) -> list[str]:
    return ["--extractors", "i3d", "--data", "d", "--epochs", "1", "--out", str(tmp_path / "r")]


def saliency_args(tmp_path: Path) -> list[str]:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "v", "data": {"path": "d"}}))
    return ["--configs", str(config), "--out", str(tmp_path / "r")]


LAUNCHERS = [(train_parallel, trainer_args), (saliency_parallel, saliency_args)]


def exit_code(command, argv: list[str]) -> int:  # noqa: ANN001
    try:
        return command(argv)
    except SystemExit as e:  # argparse's refusal
        return e.code


@pytest.mark.parametrize("command, base", LAUNCHERS, ids=["train", "saliency"])
@pytest.mark.parametrize(
    "flags, said",
    [
        (["--gpus-per-run", "2"], "--gpus-per-run: for --launcher slurm only"),
        (["--cpus-per-run", "4"], "--cpus-per-run: for --launcher slurm only"),
        (["--time", "01:00:00"], "--time: for --launcher slurm only"),
        (
            ["--launcher", "slurm", "--device", "cpu", "--gpus-per-run", "2"],
            "--gpus-per-run 2 with --device cpu: each job would hold 2 GPU(s)",
        ),
        (["--launcher", "slurm", "--gpus-per-run", "100000"], "must be 0..16, got 100000"),
        (["--launcher", "slurm", "--gpus-per-run", "17"], "must be 0..16, got 17"),
        (["--launcher", "slurm", "--cpus-per-run", "100000"], "must be 1..1024, got 100000"),
    ],
)
def test_launcher_flags_that_would_be_ignored_or_wasted_are_refused(
    standins, tmp_path, capsys, command, base, flags, said
):
    """Locally the slurm-only flags were ignored without a word (exit 0); on the CPU a job
    held its GPUs idle and ran a CPU process per GPU; 100000 GPUs went into --gres."""
    assert exit_code(command, [*base(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err, err
    assert not (tmp_path / "r").exists() and not recorded(standins, "sbatch")


@pytest.mark.parametrize("command, base", LAUNCHERS, ids=["train", "saliency"])
def test_a_cpu_job_asks_for_no_gpu_and_runs_one_process(standins, tmp_path, command, base):
    assert command([*base(tmp_path), "--launcher", "slurm", "--device", "cpu"]) == 0
    (script,) = (tmp_path / "r" / "slurm").glob("*.sbatch")
    text = script.read_text()
    assert "--gres" not in text and "--nproc_per_node=1 " in text, text


def test_a_node_s_worth_of_gpus_is_accepted(standins, tmp_path):
    assert (
        train_parallel([*trainer_args(tmp_path), "--launcher", "slurm", "--gpus-per-run", "16"])
        == 0
    )
    script = (tmp_path / "r" / "slurm" / "i3d.sbatch").read_text()
    assert "#SBATCH --gres=gpu:16\n" in script and "--nproc_per_node=16 " in script


# ------------------------------------------------ a resume keeps the run's process count


def fake_run(run: Path, world_size: int) -> None:
    """A trajectory run folder whose last.pt says it was trained by ``world_size`` processes
    (its weights are never read: the launcher refuses or writes scripts before)."""
    from train.checkpoint import save_checkpoint
    from train.trajectory.config import build_config

    cfg = build_config({"extractor": "i3d", "data": "d", "epochs": 1, "out": str(run)})
    run.mkdir(parents=True)
    config = cfg.model_dump(mode="json")
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    state = {"model": {}, "optimizer": {}, "scheduler": {}, "epoch": 1, "config": config}
    save_checkpoint(run / "last.pt", {**state, "world_size": world_size})


@pytest.mark.parametrize(
    "saved, gpus, said",
    [
        (1, "2", "trained by 1 process(es) and this job has 2"),
        (2, "1", "trained by 2 process(es) and this job has 1"),
        (2, "2", None),  # refused before: the launcher compared with its own one process
        (1, "0", None),
    ],
)
def test_a_trainer_resume_by_another_process_count_writes_no_script(
    standins, tmp_path, capsys, saved, gpus, said
):
    """Each job of a round trained alone failed on its own, as torchrun's 2 processes met a
    last.pt of 1; the launcher wrote and submitted the scripts with exit 0."""
    out = tmp_path / "r"
    fake_run(out / "i3d", saved)
    argv = ["--resume", "--out", str(out), "--epochs", "3", "--launcher", "slurm"]
    code = train_parallel([*argv, "--gpus-per-run", gpus])
    err = capsys.readouterr().err.strip()
    if said is None:
        assert code == 0, err
        script = (out / "slurm" / "i3d.sbatch").read_text()
        assert f"--nproc_per_node={max(int(gpus), 1)} " in script
        assert script.count(" --resume") == 1, script  # it said --resume --resume
        return
    assert code == 2 and len(err.splitlines()) == 1 and said in err, err
    assert f"resume it with --launcher slurm --gpus-per-run {saved}" in err, err
    assert not (out / "slurm").exists() and not recorded(standins, "sbatch")


def test_a_saliency_resume_by_another_process_count_writes_no_script(standins, tmp_path, capsys):
    from train.checkpoint import save_checkpoint
    from train.saliency.config import dump_config, load_config

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "v", "data": {"path": "d"}}))
    run = tmp_path / "r" / "v"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(load_config(config)))
    state = {"model": {}, "optimizer": {}, "scheduler": {}, "epoch": 1, "config": {}}
    save_checkpoint(run / "last.pt", {**state, "world_size": 1})
    argv = ["--configs", str(config), "--out", str(tmp_path / "r"), "--resume"]
    assert saliency_parallel([*argv, "--launcher", "slurm", "--gpus-per-run", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "trained by 1 process(es) and this job has 2" in err, err
    assert not (tmp_path / "r" / "slurm").exists() and not recorded(standins, "sbatch")
    assert saliency_parallel([*argv, "--launcher", "slurm", "--gpus-per-run", "1"]) == 0
    script = (tmp_path / "r" / "slurm" / "v.sbatch").read_text()
    assert "--nproc_per_node=1 " in script and script.count(" --resume") == 1, script
