"""The shard options that ``python -m generator`` and ``convert`` share (size, compression,
zstd level), and the layout settings they fix in a fingerprint."""

from __future__ import annotations

import argparse

from generator.dataformat.layout import SHARD_SUFFIXES
from trajkit.cli import whole_number

COMPRESSIONS = tuple(SHARD_SUFFIXES)
MAX_SHARD_SIZE = 2**32 - 1
"""The most samples ``--shard-size`` asks for: more than any dataset holds (that many clips
of the smallest size, one camera and 2 frames of 16 px, are over 10 TB; at the defaults, over
6 PB), and, like a seed (``trajkit.seeds``), a number that ``metadata.json`` and the
fingerprint record and every JSON reader reads back whole (a 23-digit size was written as
given)."""
DEFAULT_SHARD_SIZE = 128  # ~170 MB at the default clip size, WebDataset's sweet spot


def add_shard_options(p: argparse.ArgumentParser) -> None:
    """``--shard-size``, ``--compression`` and ``--zstd-level``, shared by generate and convert."""
    p.add_argument(
        "--shard-size",
        type=whole_number(1, MAX_SHARD_SIZE),
        help=f"samples per shard, 1..2^32-1 (default {DEFAULT_SHARD_SIZE})",
    )
    p.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        help="shards: zstd, one frame per sample (.tar.zst, default), or none (plain .tar, "
        "which webdataset and Hugging Face datasets open directly)",
    )
    p.add_argument(
        "--zstd-level",
        type=zstd_level,
        help="zstd level for shards, 1..19 (default 1); with --compression zstd only",
    )


def shard_settings(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[int, str, int]:
    """(shard size, compression, zstd level) of the parsed ``args``; each option only where it
    means something (a ``--shard-size`` with ``--format pt`` was taken and did nothing)."""
    options = ("shard_size", "compression", "zstd_level")
    given = [f"--{k.replace('_', '-')}" for k in options if getattr(args, k) is not None]
    if args.format != "shards" and given:
        verb = "applies" if len(given) == 1 else "apply"
        p.error(f"{' and '.join(given)} {verb} to --format shards only")
    if args.compression == "none" and args.zstd_level is not None:
        p.error("--zstd-level applies to --compression zstd only; drop it for plain .tar shards")
    return args.shard_size or DEFAULT_SHARD_SIZE, args.compression or "zstd", args.zstd_level or 1


def zstd_level(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value == 0:  # one way to ask for plain tars, not two
        raise argparse.ArgumentTypeError("must be 1..19, got 0 (uncompressed: --compression none)")
    if not 1 <= value <= 19:
        raise argparse.ArgumentTypeError(f"must be 1..19, got {value}")
    return value


def layout_settings(fmt: str, shard_size: int, level: int, compression: str) -> dict | None:
    """What fixes the bytes of a shard; None for format "pt" (whose fingerprint predates formats)."""
    if fmt != "shards":
        return None
    if compression == "none":
        return {"format": "shards", "shard_size": shard_size, "compression": "none"}
    # zstd shards predate the choice: their settings carry no "compression" key
    return {"format": "shards", "shard_size": shard_size, "zstd_level": level}
