"""The damage fuzzer: every kind of damage, in both layouts, is named by ``validate`` and the reader.

Each case copies a small dataset (built once per session), damages one file
with ``tests.generator.damage.apply`` and checks that ``validate`` exits 1 with
no traceback, naming the damaged file and no other, and that reading every
item of every split raises ``DatasetError`` naming it. One seeded case per kind
and layout runs by default; ``-m slow`` runs eight more seeds of each.
"""

from __future__ import annotations

import re
import shutil
import zlib

import numpy as np
import pytest

from generator.dataformat.dataset import SPLITS, DatasetError, TrajectoryDataset
from tests.generator.damage import KINDS, LAYOUTS, apply

FILE_NAME = re.compile(
    r"(sample_\d+\.(pt|json)|shard_\d+\.tar\.zst|checkpoint_\d+\.json|metadata\.json|fingerprint\.json)"
)


@pytest.fixture
def datasets(small_dataset, small_shard_dataset):
    return {"pt": small_dataset, "shards": small_shard_dataset}


def read_everything(root) -> None:
    for split in SPLITS:
        ds = TrajectoryDataset(root, split)
        for i in range(len(ds)):
            ds[i]


def check_damage(kind, layout, seed, datasets, tmp_path, cli, capsys) -> None:
    root = tmp_path / "ds"
    shutil.copytree(datasets[layout], root, symlinks=True)
    damaged = apply(kind, root, layout, np.random.default_rng(seed))
    where = f"{kind} on {damaged.relative_to(root)} ({layout}, seed {seed})"

    capsys.readouterr()
    code = cli("validate", root)
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1, f"{where}: validate exited {code}\n{text}"
    assert "Traceback" not in text, where
    problems = [line for line in text.splitlines() if line.startswith("       - ")]
    assert any(damaged.name in line for line in problems), f"{where}: not named\n{text}"
    others = [line for line in problems if FILE_NAME.search(line) and damaged.name not in line]
    assert not others, f"{where}: other files blamed\n{text}"

    # A flipped bit inside a video's tensor is seen only by hashing it, which every read does.
    with pytest.raises(DatasetError, match=re.escape(damaged.name)):
        read_everything(root)


def _seed(kind: str, layout: str) -> int:
    return zlib.crc32(f"{kind}/{layout}".encode())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", KINDS)
def test_damage_is_named(kind, layout, datasets, tmp_path, cli, capsys):
    check_damage(kind, layout, _seed(kind, layout), datasets, tmp_path, cli, capsys)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", range(1, 9))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", KINDS)
def test_damage_is_named_wider(kind, layout, seed, datasets, tmp_path, cli, capsys):
    check_damage(kind, layout, _seed(kind, layout) + seed, datasets, tmp_path, cli, capsys)
