"""``train.parallel --launcher slurm``: one sbatch script per run, submitted where ``sbatch`` exists.

Each job runs ``torchrun`` over its GPUs with ``--resume`` and asks Slurm to
requeue it on preemption or node failure; a requeued job continues from its
``last.pt`` (the trainer starts fresh when there is none yet).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from generator.store import write_atomic
from train.summary import RunStatus


def sbatch_script(
    name: str,
    train_args: list[str],
    out: Path,
    gpus: int,
    cpus: int,
    time_limit: str,
    module: str = "train",
) -> str:
    repo = Path(__file__).resolve().parents[1]
    run_dir = (out / name).absolute()
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={max(gpus, 1)}", "-m", module, *train_args, "--resume",
    ]  # fmt: skip
    gres = f"#SBATCH --gres=gpu:{gpus}\n" if gpus else ""
    return (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={module.replace('.', '-')}-{name}\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --ntasks=1\n"
        f"{gres}"
        f"#SBATCH --cpus-per-task={cpus}\n"
        f"#SBATCH --time={time_limit}\n"
        f"#SBATCH --output={run_dir}/slurm-%j.log\n"
        "#SBATCH --requeue\n"
        "#SBATCH --open-mode=append\n"
        "set -euo pipefail\n"
        f"mkdir -p {shlex.quote(str(run_dir))}\n"
        f"cd {shlex.quote(str(repo))}\n"
        f"export OMP_NUM_THREADS={max(1, cpus // max(gpus, 1))}\n"
        f"exec {shlex.join(torchrun)}\n"
    )


def submit(
    jobs: dict[str, list[str]],
    out: Path,
    gpus: int,
    cpus: int,
    time_limit: str,
    module: str = "train",
) -> list[RunStatus]:
    """Write ``out/slurm/NAME.sbatch`` for each run; submit them if ``sbatch`` is on PATH."""
    folder = out / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {}
    for name, args in jobs.items():
        path = folder / f"{name}.sbatch"
        write_atomic(path, sbatch_script(name, args, out, gpus, cpus, time_limit, module).encode())
        path.chmod(0o755)
        scripts[name] = path
    sbatch = shutil.which("sbatch")
    statuses = []
    if sbatch is None:
        print(f"sbatch not found: wrote {len(scripts)} scripts to {folder}; on the cluster run")
        for path in scripts.values():
            print(f"  sbatch {path}")
        return [
            RunStatus(name, status="written", extra={"script": str(p)})
            for name, p in scripts.items()
        ]
    for name, path in scripts.items():
        proc = subprocess.run([sbatch, str(path)], capture_output=True, text=True)
        if proc.returncode == 0:
            print(f"{name}: {proc.stdout.strip()}")
            statuses.append(RunStatus(name, status="submitted", extra={"script": str(path)}))
        else:
            error = (proc.stderr.strip().splitlines() or ["sbatch failed"])[-1]
            print(f"{name}: sbatch failed: {error}", file=sys.stderr)
            statuses.append(RunStatus(name, status="failed", error=f"sbatch: {error}"))
    return statuses
