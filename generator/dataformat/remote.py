"""Format v1 in object storage: what ``push`` and ``pull`` must know of a dataset folder.

The copying itself is ``trajkit.s3sync``, which fits any folder; a dataset adds that
``metadata.json`` is written last (so it goes up last and is moved in last), that its
writers hold ``.lock``, that the checkpoint manifests hold every video's, label's and
shard's SHA-256 (so a pull verifies them even if another tool uploaded them), that
``metadata.json``, the fingerprint and the manifests are checked by the dataset reader and
``validate``, and that ``normalization.json`` is a cache the reader computes again.
A training run folder has none of these files, so the same rules copy it too.
"""

from __future__ import annotations

import re
from pathlib import Path

from generator.dataformat.layout import LOCK, METADATA, STATS_FILE, manifest_hashes
from trajkit import s3sync

MANIFESTS = re.compile(r"checkpoints/checkpoint_\d+\.json")
RECOMPUTED = frozenset({STATS_FILE})

DATASET = s3sync.FolderRules(
    last=METADATA,
    lock=LOCK,
    manifests=MANIFESTS,
    hashes_in=manifest_hashes,
    self_checked=re.compile(r"metadata\.json|checkpoints/fingerprint\.json|" + MANIFESTS.pattern),
    self_checked_by="left to the dataset reader and validate (metadata, fingerprint, manifests)",
    recomputed=RECOMPUTED,
)


def push(root: Path, url: str, client, part_size: int = 64 * s3sync.MB, quiet: bool = False):
    """``trajkit.s3sync.push`` with a dataset's rules."""
    return s3sync.push(root, url, client, part_size, quiet, DATASET)


def pull(url: str, root: Path, client, part_size: int = 64 * s3sync.MB, quiet: bool = False):
    """``trajkit.s3sync.pull`` with a dataset's rules."""
    return s3sync.pull(url, root, client, part_size, quiet, DATASET)


def main(command: str, argv: list[str]) -> int:
    """``python -m generator push|pull``."""
    return s3sync.main(command, argv, f"python -m generator {command}", DATASET)
