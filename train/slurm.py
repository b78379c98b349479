"""``--launcher slurm``: one sbatch script per run, submitted where ``sbatch`` exists; and the
launcher flags ``train.parallel`` and ``train.saliency.parallel`` share.

Each job runs ``torchrun`` (through ``srun``) over its GPUs with ``--resume`` and
asks Slurm to requeue it on preemption or node failure; a requeued job continues
from its ``last.pt`` (the trainer starts fresh when there is none yet).

Every value that reaches a script is checked first: ``--time`` against Slurm's
time formats, and no control character anywhere (``trajkit.cli.CONTROL``: a newline
would start a new line of the script, a C1 control or U+2028 one for Python's
``splitlines``, editors and some terminals). Paths are shell-quoted in the script and
in the printed ``sbatch`` command, and the job log goes to the run folder, which is
created here before submission (Slurm fails a job whose log folder is missing). That log
path is a Slurm filename pattern: a ``%`` of the folder is doubled (``%%``, a literal ``%``),
and a backslash, which turns the pattern off, is refused.
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
from trajkit.cli import CONTROL, one_line, whole_number
from trajkit.files import write_atomic

TIME_FORMATS = re.compile(r"\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}")
"""Slurm's ``--time``: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
MAX_GPUS_PER_RUN = 16
"""A job runs on one node (``--nodes=1``), and the largest nodes hold 16 GPUs:
``--gres=gpu:100000`` was written as asked, a job no cluster can ever start."""
MAX_CPUS_PER_RUN = 1024  # one node's, as the GPUs: the largest hold a few hundred
SLURM_DEFAULTS = {"gpus_per_run": 1, "cpus_per_run": 8, "time": "04:00:00"}
"""The slurm-only flags, with their values when not given (``gpus_per_run``: 0 on the CPU)."""


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


def add_launcher_flags(p: argparse.ArgumentParser) -> None:
    """``--launcher`` and its slurm-only flags; ``settle_launcher_flags`` checks them."""
    p.add_argument("--launcher", choices=("local", "slurm"), default="local")
    p.add_argument(
        "--gpus-per-run",
        type=whole_number(0, MAX_GPUS_PER_RUN),
        help=f"slurm only: GPUs (and torchrun processes) per job, 0..{MAX_GPUS_PER_RUN} "
        "(default 1; 0 with --device cpu)",
    )
    p.add_argument(
        "--cpus-per-run",
        type=whole_number(1, MAX_CPUS_PER_RUN),
        help=f"slurm only: CPUs per job, 1..{MAX_CPUS_PER_RUN} (default 8)",
    )
    p.add_argument(
        "--time", type=time_limit, help="slurm only: time limit per job (default 04:00:00)"
    )


def settle_launcher_flags(args: argparse.Namespace) -> None:
    """Refuse a slurm-only flag given to the local launcher, which ignored it without a word,
    and GPUs asked for runs on the CPU (each job held them idle and started a CPU process per
    GPU); then fill in the slurm defaults."""
    given = [f"--{k.replace('_', '-')}" for k in SLURM_DEFAULTS if getattr(args, k) is not None]
    if args.launcher == "local":
        if given:
            raise SlurmError(
                f"{', '.join(given)}: for --launcher slurm only; the local launcher runs each "
                "run as one process, on one GPU or a share of the cores, with no time limit"
            )
        return
    if args.device == "cpu" and args.gpus_per_run:
        raise SlurmError(
            f"--gpus-per-run {args.gpus_per_run} with --device cpu: each job would hold "
            f"{args.gpus_per_run} GPU(s) and train on the CPU; give --gpus-per-run 0"
        )
    for key, default in SLURM_DEFAULTS.items():
        if getattr(args, key) is None:
            cpu = key == "gpus_per_run" and args.device == "cpu"
            setattr(args, key, 0 if cpu else default)


def job_processes(gpus: int) -> int:
    """The processes a job's ``torchrun`` starts: one a GPU, one without any."""
    return max(gpus, 1)


def run_processes(args: argparse.Namespace) -> int:
    """The processes each run of a launch trains with: one locally (no torchrun), else its
    job's. A resume must keep a run's count (``train.distributed.process_count_change``)."""
    return 1 if args.launcher == "local" else job_processes(args.gpus_per_run)


def resume_advice(saved: int) -> str:
    """How a launcher resumes a run trained by ``saved`` processes."""
    alone = " or --launcher local" if saved == 1 else ""
    return f"with --launcher slurm --gpus-per-run {saved}{alone}"


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


def log_path(out: Path, name: str) -> str:
    """The job log's ``--output`` filename pattern: ``slurm-%j.log`` (``%j``: the job id) in
    the run folder, whose every ``%`` is doubled: Slurm read ``%u`` or ``%x`` in ``--out`` as
    its user and job name, and wrote the log in another folder, or failed the job. A backslash
    turns the pattern off and is dropped, which also moves the log: refused."""
    folder = str((out / name).absolute())
    if "\\" in folder:
        raise SlurmError(
            f"{folder} holds a backslash: Slurm drops it from the log path and leaves %j "
            "unexpanded, so the log would go elsewhere; choose an --out without one"
        )
    return folder.replace("%", "%%") + "/slurm-%j.log"


def script_path(out: Path, name: str) -> Path:
    return (out / "slurm" / f"{name}.sbatch").absolute()


def sbatch_command(script: Path, log: str) -> list[str]:
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
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={job_processes(gpus)}",
        "-m",
        module,
        *[a for a in train_args if a != "--resume"],
        "--resume",
    ]  # fmt: skip: a job requeued after a preemption continues its run
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
        f"export OMP_NUM_THREADS={max(1, cpus // job_processes(gpus))}\n"
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
            (out / name).mkdir(parents=True, exist_ok=True)
            commands[name] = (path, sbatch_command(path, log_path(out, name)))
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
