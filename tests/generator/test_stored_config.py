"""A dataset whose stored config breaks a rule of what is worth drawing (added after an older
generator drew it) reads as any other; only generating more of it (``--resume``) is refused."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import run_cli

TINY = {
    "frames": 4,
    "horizon": 1,
    "image_size": 16,
    "cameras": {"azimuths_deg": [20.0], "elevations_deg": [30.0]},
    "ground_truth": {"enabled": False},
}

# Each one a stored config an older generator took and a new run refuses, with its refusal.
STORED = [
    # masks with ground truth off: older generators drew no ground truth, these very bytes
    (
        {"ground_truth": {"enabled": False, "masks": True}},
        "ground_truth.masks: needs ground truth on",
    ),
    # a speed range from 0: the median of the probe's paths moved, some clips stand still
    (
        {"linear": {"speed": {"lo": 0.0, "hi": 1.0}}},
        "linear: Linear paths barely move at the low end of speed",
    ),
]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("stored")
    (where / "gen.yaml").write_text(yaml.safe_dump(TINY))
    root = where / "ds"
    args = ["--n", 4, "--out", root, "--workers", 1, "--config", where / "gen.yaml", "--quiet"]
    assert run_cli(*args) == 0
    return root


def _store(src: Path, dst: Path, section: dict) -> dict:
    """A copy of ``src`` whose metadata and fingerprint store ``section`` in their config, as
    an older generator would have written them (no hash covers either file)."""
    shutil.copytree(src, dst)
    for path in (dst / "metadata.json", dst / "checkpoints" / "fingerprint.json"):
        record = json.loads(path.read_text())
        for key, value in section.items():
            record["config"][key] = {**record["config"].get(key, {}), **value}
        path.write_text(json.dumps(record, indent=2, sort_keys=True))
    return record["config"]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    "section, refusal", STORED, ids=["masks-without-ground-truth", "speed-from-0"]
)
def test_a_dataset_drawn_under_older_rules_reads_but_is_not_extended(
    tiny_dataset, tmp_path, cli, capsys, section, refusal
):
    root = tmp_path / "ds"
    config = _store(tiny_dataset, root, section)
    assert cli("validate", root) == 0
    assert cli("preview", root, "--index", 0, "--out", tmp_path / "p.png") == 0
    # convert validated the stored config as a new run's and called the dataset damaged
    assert cli("convert", root, tmp_path / "new", "--format", "shards", "--workers", 1) == 0
    assert cli("validate", tmp_path / "new") == 0
    capsys.readouterr()

    (tmp_path / "stored.yaml").write_text(yaml.safe_dump(config))
    before = _files(root)
    args = ["--n", 6, "--out", root, "--workers", 1, "--config", tmp_path / "stored.yaml"]
    assert cli(*args, "--resume") == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: config {tmp_path / 'stored.yaml'}: {refusal}"), err
    assert _files(root) == before
