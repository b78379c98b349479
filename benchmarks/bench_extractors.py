"""Train-step time of each extractor's multi-view model on one CPU thread.

The trainer runs the four tiny models at once on a 2-core machine, so each
gets about half a core: a batch of 8 four-camera clips (8, 4, 3, 32, 64, 64),
forward + backward + AdamW step, should take well under 0.3 s of one core for
10 epochs of 2,000 samples to fit in 30 minutes. Both the wall time and this
process's CPU time are reported; with one thread and other jobs on the
machine, the CPU time is the steadier figure. The last line projects the
four models trained together: (sum of CPU s/step) x steps / 2 cores.

    python benchmarks/bench_extractors.py [NAMES ...] [--preset tiny] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from extractors import build_model, list_extractors
from extractors.cost import count_parameters


def time_train_step(name: str, preset: str, batch: int, repeats: int) -> tuple[list, list, int]:
    """Wall and CPU seconds of ``repeats`` training steps (after one warm-up step)."""
    torch.manual_seed(0)
    model = build_model(name, preset).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    video = torch.randn(batch, 4, 3, 32, 64, 64)
    labels = torch.randint(0, 4, (batch,))
    future = torch.randn(batch, 3)
    wall, cpu = [], []
    for i in range(repeats + 1):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        out = model(video)
        loss = F.cross_entropy(out["logits"], labels) + F.mse_loss(out["future"], future)
        if "aux_loss" in out:
            loss = loss + out["aux_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.process_time() - start_cpu)
    return wall, cpu, count_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--samples", type=int, default=2000, help="for the projection")
    parser.add_argument("--epochs", type=int, default=10, help="for the projection")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.names or list_extractors()
    print(
        f"batch ({args.batch}, 4, 3, 32, 64, 64), {args.threads} thread(s), preset "
        f"{args.preset}, forward+backward+AdamW, median of {args.repeats} steps"
    )
    print(f"{'name':<12} {'params':>10} {'wall s':>7} {'cpu s':>7} {'clips/cpu-s':>11}")
    total_cpu = 0.0
    for name in names:
        wall, cpu, params = time_train_step(name, args.preset, args.batch, args.repeats)
        cpu_s = statistics.median(cpu)
        total_cpu += cpu_s
        print(
            f"{name:<12} {params:>10,} {statistics.median(wall):>7.3f} {cpu_s:>7.3f} "
            f"{args.batch * 4 / cpu_s:>11.1f}",
            flush=True,
        )
    steps = args.samples // args.batch * args.epochs
    print(
        f"projection: {len(names)} models x {steps} steps on 2 cores = "
        f"{total_cpu * steps / 2 / 60:.1f} min of compute (no data loading or validation)"
    )


if __name__ == "__main__":
    main()
