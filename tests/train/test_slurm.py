"""Slurm scripts of train.trajectory.parallel and train.saliency.parallel, run under bash with stand-ins.

``sbatch`` and ``srun`` are scripts on PATH that record their arguments; the stand-in
``sbatch`` runs the batch script the way Slurm would (its log in the ``--output`` file,
whose folder must already exist). Hostile values (spaces, quotes, ``$(...)``, backticks,
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
log="${log//%j/42}"
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
