"""Train-step time of each extractor's multi-view model, as the training recipe builds it.

The trainer runs the four tiny models at once on a 2-core machine, so each gets about half a
core. Each model is built from its recipe (``configs/train/<preset>.yaml`` with its
``per_extractor`` settings: trajectory head, extractor options) and fed what the trainer
feeds it: the default dataset's clips at the recipe's resolution and frame stride (32
frames of 32 px for tiny). A step is forward + backward + AdamW on a batch of ``batch_size`` four-camera clips,
which the ``clips/cpu-s`` column counts.
Both the wall time and this process's CPU time are reported; with one thread and other jobs
on the machine, the CPU time is the steadier figure. The last line projects the four models
trained together: (sum of CPU s/step) x steps / 2 cores.

    python benchmarks/bench_extractors.py [NAMES ...] [--preset tiny] [--threads 1]
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import get_args

import torch

from extractors import list_extractors
from extractors.cost import count_parameters
from generator.config import GeneratorConfig
from train.trajectory.config import TrainConfig, build_config
from train.trajectory.evaluate import task_loss
from train.trajectory.loop import make_optimizer
from trajkit.cli import MAX_THREADS, OneLineParser, exit_on_interrupt, whole_number


def time_train_step(name: str, preset: str, repeats: int) -> tuple[list, list, int, tuple]:
    """Wall and CPU seconds of ``repeats`` training steps (after one warm-up step), the
    parameter count and the batch's shape."""
    cfg = build_config({"extractor": name, "preset": preset, "data": "-", "out": "-", "epochs": 1})
    torch.manual_seed(0)
    model = cfg.build_model(num_cameras=4, num_classes=4)
    model.train()
    optimizer = make_optimizer(model, cfg)
    data = GeneratorConfig()  # the default dataset's clips, prepared as the recipe says
    frames, size = -(-data.frames // cfg.frame_stride), data.image_size // cfg.downsample
    video = torch.randn(cfg.batch_size, 4, 3, frames, size, size)
    labels = torch.randint(0, 4, (cfg.batch_size,))
    future, positions = torch.randn(cfg.batch_size, 3), torch.randn(cfg.batch_size, frames, 3)
    wall, cpu = [], []
    for i in range(repeats + 1):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        out = model(video)
        loss = task_loss(
            out,
            labels,
            future,
            cfg.future_weight,
            cfg.smooth_l1_beta,
            positions,
            cfg.trajectory_weight,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.process_time() - start_cpu)
    return wall, cpu, count_parameters(model), tuple(video.shape)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="bench_extractors.py", description=__doc__.splitlines()[0])
    known = list_extractors()
    parser.add_argument("names", nargs="*", help=f"extractors (default: all: {', '.join(known)})")
    presets = get_args(TrainConfig.model_fields["preset"].annotation)
    parser.add_argument("--preset", choices=presets, default="tiny")
    parser.add_argument("--threads", type=whole_number(1, MAX_THREADS), default=1)
    parser.add_argument("--repeats", type=whole_number(1), default=7)
    parser.add_argument(
        "--samples",
        type=whole_number(1),
        default=1600,
        help="training samples per epoch, for the projection (bench-train: 80%% of 2,000)",
    )
    parser.add_argument("--epochs", type=whole_number(1), default=10, help="for the projection")
    args = parser.parse_args(argv)
    if unknown := [n for n in args.names if n not in known]:
        parser.error(f"unknown extractor {unknown[0]!r} (known: {', '.join(known)})")
    if repeated := [n for n in dict.fromkeys(args.names) if args.names.count(n) > 1]:
        parser.error(
            f"{', '.join(repeated)} named more than once: the projection would count it twice"
        )
    torch.set_num_threads(args.threads)
    names = args.names or known
    print(
        f"preset {args.preset} as the trainer builds it, {args.threads} thread(s), "
        f"forward+backward+AdamW, median of {args.repeats} steps"
    )
    print(
        f"{'name':<12} {'params':>10} {'batch':>24} {'wall s':>7} {'cpu s':>7} {'clips/cpu-s':>11}"
    )
    total_cpu_epoch = 0.0
    for name in names:
        wall, cpu, params, shape = time_train_step(name, args.preset, args.repeats)
        batch = shape[0]
        cpu_s = statistics.median(cpu)
        total_cpu_epoch += cpu_s * (args.samples // batch)
        print(
            f"{name:<12} {params:>10,} {str(shape):>24} {statistics.median(wall):>7.3f} {cpu_s:>7.3f} "
            f"{batch / cpu_s:>11.1f}",  # four-camera clips, as the batch counts them
            flush=True,
        )
    print(
        f"projection: {len(names)} models x {args.epochs} epochs of {args.samples} samples on "
        f"2 cores = {total_cpu_epoch * args.epochs / 2 / 60:.1f} min of compute "
        "(no data loading or validation)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(exit_on_interrupt(main, "bench_extractors stopped"))
