"""TrajectoryDataset throughput through a DataLoader (``make bench-data``).

Generates a dataset if needed (``--format pt`` or ``shards``; ``rendered`` reads
nothing: each sample is rendered in the loader's workers, ``generator.pipeline.stream``), then prints
samples/s for 2 loader workers, with float32 items and with uint8 items
(normalised by the consumer), through a plain ``DataLoader`` and through
``generator.dataformat.loader.make_loader`` (batches in recycled shared memory).
Target: at least 1,000 samples/s, well above what any extractor here consumes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from train.trajectory.config import MAX_BATCH_SIZE  # noqa: E402
from trajkit.cli import (  # noqa: E402
    MAX_WORKERS,
    OneLineParser,
    exit_on_interrupt,
    failed_io,
    folder_arg,
    one_line,
    whole_number,
)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="bench_dataset.py", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=folder_arg, help="default data/.bench/bench_dataset[_shards]")
    p.add_argument("--format", choices=("pt", "shards", "rendered"), default="pt")
    p.add_argument("--n", type=whole_number(1), default=1000)
    p.add_argument("--workers", type=whole_number(0, MAX_WORKERS), default=2)
    p.add_argument("--batch-size", type=whole_number(1, MAX_BATCH_SIZE), default=32)
    p.add_argument("--epochs", type=whole_number(1), default=2)
    args = p.parse_args(argv)

    from generator.dataformat.sources import DatasetError
    from generator.pipeline.generate import GenerationError

    try:
        return measure(args)
    except (GenerationError, DatasetError) as e:  # a folder locked, damaged or of other data
        print(f"bench_dataset.py: error: {one_line(e)}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except OSError as e:
        print(f"bench_dataset.py: error: {failed_io(e)}", file=sys.stderr)
        return 1


def measure(args) -> int:
    from generator.config import GeneratorConfig
    from generator.dataformat.dataset import TrajectoryDataset, read_metadata
    from generator.dataformat.loader import make_loader
    from generator.dataformat.sources import DatasetError
    from generator.pipeline.generate import generate
    from generator.pipeline.request import Request
    from generator.pipeline.stream import RenderedTrajectoryDataset

    suffix = "" if args.format == "pt" else f"_{args.format}"
    args.data = args.data or ROOT / "data" / ".bench" / f"bench_dataset{suffix}"
    rendered = args.format == "rendered"
    if not rendered and not (args.data / "metadata.json").exists():
        generate(
            Request(
                n=args.n, out=args.data, workers=2, resume=True, quiet=True, format=args.format
            ),
            GeneratorConfig(),
        )
    if not rendered and (held := read_metadata(args.data).get("format", "pt")) != args.format:
        raise DatasetError(f"{args.data} holds a {held} dataset, not {args.format}")
    # float32: items normalised in the workers (what a CPU-only consumer wants);
    # uint8: normalize=False, the consumer calls normalize_batch on its device (what the trainer does).
    for recycle in (False, True):
        for normalize in (True, False):
            if rendered:  # as many training samples as a pt dataset of --n has
                ds = RenderedTrajectoryDataset(
                    GeneratorConfig(),
                    0,
                    "train",
                    epoch_samples=args.n * 4 // 5,
                    normalize=normalize,
                )
            else:
                ds = TrajectoryDataset(args.data, "train", normalize=normalize)
            loader = make_loader(
                ds,
                args.batch_size,
                num_workers=args.workers,
                recycle=recycle,
                shuffle=True,
                **({} if recycle or not args.workers else {"persistent_workers": True}),
            )
            how = "make_loader, recycled" if recycle else "DataLoader"
            for epoch in range(
                args.epochs + 1
            ):  # the first pass warms the page cache, starts workers
                t0 = time.perf_counter()
                seen = 0
                for batch in loader:
                    seen += batch["video"].shape[0]
                rate = seen / (time.perf_counter() - t0)
                tag = "warm-up" if epoch == 0 else f"epoch {epoch}"
                video = batch["video"]
                print(
                    f"{how:>21} {tag}: {seen} samples in {seen / rate:.2f} s = {rate:.0f} samples/s "
                    f"({args.format}, {args.workers} workers, batch {args.batch_size}, "
                    f"video {tuple(video.shape[1:])} {str(video.dtype).removeprefix('torch.')})",
                    flush=True,
                )
            del loader
    return 0


if __name__ == "__main__":
    sys.exit(
        exit_on_interrupt(main, "bench_dataset stopped; the same command finishes its dataset")
    )
