"""Command line: ``python -m generator [preflight|validate|preview|convert|push|pull] ...`` (see README)."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from generator.dataformat.shard_options import add_shard_options, shard_settings
from trajkit.cli import (
    MAX_WORKERS,
    OneLineParser,
    default_workers,
    entry_point,
    exit_on_interrupt,
    one_line,
    quiet_on_closed_output,
    whole_number,
)
from trajkit.seeds import MAX_SEED

DEFAULT_OUT = Path("data/trajectories")
POSITIVE = whole_number(1)
WORKERS = whole_number(1, MAX_WORKERS)
SUBCOMMANDS = ("preflight", "validate", "preview", "convert", "push", "pull")


def generate_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m generator",
        description="Render a multi-camera trajectory video dataset (format v1). "
        f"Other commands: {', '.join(SUBCOMMANDS)} (python -m generator COMMAND --help).",
    )
    p.add_argument("--n", type=POSITIVE, required=True, help="number of samples")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"dataset folder (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "--seed",
        type=whole_number(0, MAX_SEED),
        default=0,
        help="sample i depends only on (seed, i)",
    )
    p.add_argument(
        "--workers",
        type=WORKERS,
        default=default_workers(),
        help="processes (default: all cores)",
    )
    p.add_argument(
        "--checkpoint-every", type=POSITIVE, default=2000, help="samples per checkpoint manifest"
    )
    p.add_argument(
        "--config",
        type=Path,
        help="YAML file of generator settings, or a shipped one's name (easy, medium, hard)",
    )
    p.add_argument("--resume", action="store_true", help="continue or extend the dataset in --out")
    p.add_argument(
        "--verify",
        action="store_true",
        help="with --resume: hash every kept video or shard too (else sizes and labels are "
        "checked); damaged samples are rendered again",
    )
    p.add_argument("--no-preflight", action="store_true", help="skip the disk-space checks")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--format",
        choices=("pt", "shards"),
        default="pt",
        help="pt: a .pt and a .json file per sample (default); shards: WebDataset tar shards",
    )
    add_shard_options(p)
    p.add_argument(
        "--backend", choices=("loky", "dask"), default="loky", help="local processes or Dask"
    )
    p.add_argument("--scheduler", help="Dask scheduler address, with --backend dask")
    return p


def main_generate(argv: list[str]) -> int:
    from generator.config import ConfigError, load_config
    from generator.pipeline.generate import GenerationError, generate
    from generator.pipeline.request import Request

    parser = generate_parser()
    args = parser.parse_args(argv)
    if args.scheduler is not None and args.backend != "dask":
        parser.error("--scheduler is a Dask scheduler's address: it needs --backend dask")
    if args.verify and not args.resume:
        parser.error("--verify checks the samples a --resume keeps: it needs --resume")
    shard_size, compression, level = shard_settings(parser, args)
    try:
        cfg = load_config(args.config)
        req = Request(
            n=args.n,
            out=args.out,
            seed=args.seed,
            workers=args.workers,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            verify=args.verify,
            preflight=not args.no_preflight,
            quiet=args.quiet,
            format=args.format,
            shard_size=shard_size,
            zstd_level=level,
            compression=compression,
            backend=args.backend,
            scheduler=args.scheduler,
        )
        meta = generate(req, cfg)
    except (ConfigError, GenerationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    if not args.quiet:
        print(
            f"{meta['total_samples']} samples in {args.out} "
            f"({meta['generation_time_seconds']:.1f} s of generation); "
            f"classes {meta['class_distribution']}"
        )
    return 0


def main_preflight(argv: list[str]) -> int:
    from generator.config import ConfigError, load_config
    from generator.dataformat.layout import Layout
    from generator.dataformat.sources import DatasetError, read_manifest
    from generator.pipeline.generate import GenerationError, check_out
    from generator.pipeline.preflight import estimate

    p = OneLineParser(
        prog="python -m generator preflight", description="Disk estimate and verdict."
    )
    p.add_argument("--n", type=POSITIVE, required=True)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--config", type=Path)
    p.add_argument("--format", choices=("pt", "shards"), default="pt")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        check_out(args.out)  # what generate would refuse of --out itself
    except (ConfigError, GenerationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    done = 0
    layout = Layout(args.out)
    try:
        for path in layout.manifests() if layout.checkpoints.is_dir() else []:
            try:  # a regular file only: a FIFO would hang
                done = read_manifest(path, layout.root)[0].end
            except DatasetError:
                break
        est = estimate(cfg, max(args.n - done, 0), args.out, args.format)
    except OSError as e:  # a name over the filesystem's limit, a folder it may not read
        print(f"error: cannot check {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(("OK: " if est.ok else "FAIL: ") + est.describe())
    return 0 if est.ok else 1


# What a Ctrl-C leaves behind, per command: one line, exit 130.
INTERRUPTED = {
    "generate": "whole samples in the dataset folder are kept; continue with --resume",
    "preflight": "nothing was written",
    "validate": "the check stopped before its verdict; nothing was changed",
    "preview": "the picture may be incomplete; run the preview again",
    "convert": "nothing of the new folder was kept; run the conversion again",
    "push": "run the same push again: what arrived is skipped, cut uploads continue",
    "pull": "run the same pull again to finish it",
}


def _command(name: str):
    """The ``main`` of a subcommand, imported only when it runs (push needs boto3)."""
    if name == "preflight":
        return main_preflight
    if name == "validate":
        from generator.dataformat.validate import main as validate_main
        from generator.render.ground_truth import check_ground_truth

        return lambda argv: validate_main(argv, check_ground_truth)
    elif name == "convert":
        from generator.dataformat.convert import main
    elif name == "preview":
        from generator.preview import main
    else:
        from generator.dataformat.remote import main as s3_main

        return lambda argv: s3_main(name, argv)
    return main


@quiet_on_closed_output
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in SUBCOMMANDS:
            near = difflib.get_close_matches(name, SUBCOMMANDS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            print(
                f"python -m generator: error: unknown command {one_line(name)!r} "
                f"(commands: {', '.join(SUBCOMMANDS)}; none renders a dataset){hint}",
                file=sys.stderr,
            )
            return 2
        return exit_on_interrupt(lambda: _command(name)(rest), INTERRUPTED[name])
    return exit_on_interrupt(lambda: main_generate(argv), INTERRUPTED["generate"])


run = entry_point(main)  # python -m generator and the trajgen script


if __name__ == "__main__":
    run()
