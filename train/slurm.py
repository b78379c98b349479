"""``--launcher slurm``: one sbatch script per run, submitted where ``sbatch`` exists.

Each job runs ``torchrun`` (through ``srun``) over its GPUs with ``--resume`` and
asks Slurm to requeue it on preemption or node failure; a requeued job continues
from its ``last.pt`` (the trainer starts fresh when there is none yet).

Every value that reaches a script is checked first: ``--time`` against Slurm's
time formats, and no control character anywhere (``trajkit.cli.CONTROL``: a newline
would start a new line of the script, a C1 control or U+2028 one for Python's
``splitlines``, editors and some terminals). Paths are shell-quoted in the script and
in the printed ``sbatch`` command, and the job log goes to the run folder, which is
created here before submission (Slurm fails a job whose log folder is missing).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from train.run_folder import RunFolderBusy, writing_to
from train.summary import RunStatus
from trajkit.cli import CONTROL, one_line
from trajkit.files import write_atomic

TIME_FORMATS = re.compile(r"\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}")
"""Slurm's ``--time``: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""


class SlurmError(ValueError):
    """A value that cannot go into a batch script; the message is one line."""


def check_time(text: str) -> str:
    if not TIME_FORMATS.fullmatch(text):
        raise SlurmError(
            f"--time {text!r} is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)"
        )
    return text


def time_limit(text: str) -> str:
    """argparse type for ``--time``: a bad value is argparse's one-line error, exit 2."""
    try:
        return check_time(text)
    except SlurmError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--time ")) from None


def check_values(values: dict[str, str]) -> None:
    """Refuse a control character in any value bound for a script, naming the value."""
    for what, value in values.items():
        if CONTROL.search(value):
            raise SlurmError(
                f"{what} {value!r} holds a control character; it cannot go in a script"
            )


def job_name(module: str, name: str) -> str:
    """Slurm's job name: a label, so anything beyond letters, digits, ``._-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{module.replace('.', '-')}-{name}")


def log_path(out: Path, name: str) -> Path:
    return (out / name).absolute() / "slurm-%j.log"


def script_path(out: Path, name: str) -> Path:
    return (out / "slurm" / f"{name}.sbatch").absolute()


def sbatch_command(script: Path, log: Path) -> list[str]:
    """``sbatch --output=LOG SCRIPT``: the log path goes on the command line, where quoting is
    the shell's, not inside a ``#SBATCH`` line, whose own parser splits at spaces."""
    return ["sbatch", f"--output={log}", str(script)]


def sbatch_script(
    name: str,
    train_args: list[str],
    out: Path,
    gpus: int,
    cpus: int,
    time: str,
    module: str = "train",
) -> str:
    """The batch script of one run; its relative paths are relative to the current folder."""
    check_time(time)
    workdir = Path.cwd()
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={max(gpus, 1)}", "-m", module, *train_args, "--resume",
    ]  # fmt: skip
    check_values(
        {"--time": time, "run name": name, "working folder": str(workdir)}
        | {f"argument {i}": a for i, a in enumerate(torchrun)}
    )
    gres = f"#SBATCH --gres=gpu:{gpus}\n" if gpus else ""
    run_dir = (out / name).absolute()
    return (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={job_name(module, name)}\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --ntasks=1\n"
        f"{gres}"
        f"#SBATCH --cpus-per-task={cpus}\n"
        f"#SBATCH --time={time}\n"
        "#SBATCH --requeue\n"
        "#SBATCH --open-mode=append\n"
        f"# submit with: {shlex.join(sbatch_command(script_path(out, name), log_path(out, name)))}\n"
        "set -euo pipefail\n"
        f"mkdir -p -- {shlex.quote(str(run_dir))}\n"
        f"cd -- {shlex.quote(str(workdir))}\n"
        f"export OMP_NUM_THREADS={max(1, cpus // max(gpus, 1))}\n"
        f"exec srun {shlex.join(torchrun)}\n"
    )


def submit(
    jobs: dict[str, list[str]],
    out: Path,
    gpus: int,
    cpus: int,
    time: str,
    module: str = "train",
    before_write: Callable[[], None] | None = None,
) -> list[RunStatus]:
    """Write ``out/slurm/NAME.sbatch`` for each run and create its log folder; submit them if
    ``sbatch`` is on PATH. Every script is built (and checked) before anything is written.
    ``out`` is held (``out/.lock``, as the local launcher holds it) from the first write to
    the last submission: a second command on the same folder rewrote the scripts this one
    was submitting. ``before_write`` runs once it is held."""
    check_values({"--out": str(out.absolute())})
    texts = {n: sbatch_script(n, args, out, gpus, cpus, time, module) for n, args in jobs.items()}
    try:
        with writing_to(out):
            if before_write is not None:
                before_write()
            return send(write_scripts(out, texts), out / "slurm")
    except RunFolderBusy as e:
        raise SlurmError(str(e)) from None


def write_scripts(out: Path, texts: dict[str, str]) -> dict[str, tuple[Path, list[str]]]:
    """Each run's script and log folder; returns its script and ``sbatch`` command."""
    folder = out / "slurm"
    commands = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            path = script_path(out, name)
            write_atomic(path, text.encode())
            path.chmod(0o755)
            log = log_path(out, name)
            log.parent.mkdir(parents=True, exist_ok=True)
            commands[name] = (path, sbatch_command(path, log))
    except OSError as e:
        raise SlurmError(f"cannot write the scripts in {folder}: {e.strerror or e}") from None
    return commands


def send(commands: dict[str, tuple[Path, list[str]]], folder: Path) -> list[RunStatus]:
    """Submit each script with ``sbatch``, or without one print the commands to run."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        print(f"sbatch not found: wrote {len(commands)} scripts to {folder}; on the cluster run")
        for _, command in commands.values():
            print(f"  {shlex.join(command)}")
        return [
            RunStatus(name, status="written", extra={"script": str(p)})
            for name, (p, _) in commands.items()
        ]
    statuses = []
    for name, (path, command) in commands.items():
        proc = subprocess.run([sbatch, *command[1:]], capture_output=True, text=True)
        if proc.returncode == 0:
            print(f"{name}: {proc.stdout.strip()}")
            statuses.append(RunStatus(name, status="submitted", extra={"script": str(path)}))
        else:
            error = (proc.stderr.strip().splitlines() or ["sbatch failed"])[-1]
            print(one_line(f"{name}: sbatch failed: {error}"), file=sys.stderr)
            statuses.append(RunStatus(name, status="failed", error=f"sbatch: {error}"))
    return statuses
