"""``python -m generator validate`` re-derives each label's per-frame ground truth (uv from
K (R X + t), visibility flags) in both layouts, and names the sample whose record is wrong."""

import hashlib
import json
import shutil

import pytest
import yaml

from generator.dataformat.layout import label_bytes
from generator.dataformat.validate import validate
from generator.render.ground_truth import check_ground_truth
from tests.generator.conftest import run_cli

GT = {
    "image_size": 32,
    "frames": 8,
    "occluders": {"count": 2},
    "ground_truth": {"enabled": True, "masks": True},
}


@pytest.fixture(scope="module")
def gt_dataset(tmp_path_factory):
    """8 samples with ground truth, chunks of 4, and the same converted to shards of 4."""
    where = tmp_path_factory.mktemp("gt")
    config = where / "gt.yaml"
    config.write_text(yaml.safe_dump(GT))
    root = where / "pt"
    args = ("--n", 8, "--out", root, "--config", config, "--workers", 1, "--quiet")
    assert run_cli(*args, "--checkpoint-every", 4) == 0
    return root


def _shards_of(root, where):
    out = where / "shards"
    assert run_cli("convert", root, out, "--format", "shards", "--shard-size", 4) == 0
    return out


def _edit_ground_truth(root, index, edit):
    """Change label ``index``'s ground truth with ``edit(gt)`` and re-seal its manifest: the
    files are then consistent, and only the ground truth itself is wrong."""
    path = root / "labels" / f"sample_{index:04d}.json"
    label = json.loads(path.read_text())
    edit(label["ground_truth"])
    data = label_bytes(label)
    path.write_bytes(data)
    for manifest in (root / "checkpoints").glob("checkpoint_*.json"):
        m = json.loads(manifest.read_text())
        for e in m["samples"]:
            if e["index"] == index:
                e["label_sha256"] = hashlib.sha256(data).hexdigest()
        manifest.write_text(json.dumps(m))


def _move_uv(gt):
    gt["cameras"][1]["uv"][2][0] += 0.25


def _flip_flag(gt):
    flags = gt["cameras"][2]["visibility"]
    flags[5] = "occluded" if flags[5] != "occluded" else "visible"


def _validate(cli, capsys, root):
    capsys.readouterr()
    code = cli("validate", root)
    return code, capsys.readouterr().out


@pytest.mark.parametrize("layout", ["pt", "shards"])
def test_good_ground_truth_passes_in_both_layouts(gt_dataset, tmp_path, cli, capsys, layout):
    root = gt_dataset if layout == "pt" else _shards_of(gt_dataset, tmp_path)
    code, out = _validate(cli, capsys, root)
    assert code == 0, out
    assert "ok   ground truth: 8 labels: uv = K (R X + t), depth and visibility flags" in out


@pytest.mark.parametrize(
    "edit, says",
    [
        (_move_uv, "label 3 camera 1 frame 2: uv"),
        (_flip_flag, "label 3 camera 2 frame 5: visibility"),
    ],
    ids=["uv", "visibility"],
)
@pytest.mark.parametrize("layout", ["pt", "shards"])
def test_an_edited_uv_or_flag_fails_naming_the_sample(
    gt_dataset, tmp_path, cli, capsys, layout, edit, says
):
    root = tmp_path / "pt"
    shutil.copytree(gt_dataset, root)
    _edit_ground_truth(root, 3, edit)
    where = "labels/sample_0003.json"
    if layout == "shards":
        root = _shards_of(root, tmp_path)  # the edit travels into the shard, sealed again
        where = "shards/shard_0000.tar.zst#sample_0003.json"
    code, out = _validate(cli, capsys, root)
    assert code == 1, out
    assert "FAIL ground truth: 1 problem(s)" in out
    assert f"{where}: {says}" in out
    # Nothing else is wrong with the folder: every other group holds.
    assert sum(line.startswith("FAIL") for line in out.splitlines()) == 1


def test_the_library_call_checks_ground_truth_only_when_handed_the_check(gt_dataset, tmp_path):
    root = tmp_path / "pt"
    shutil.copytree(gt_dataset, root)
    _edit_ground_truth(root, 6, _move_uv)
    unchecked = validate(root)
    assert not unchecked.failed
    said = [line for line in unchecked.lines if "ground truth" in line]
    assert said == ["skip ground truth: not checked (validate(..., ground_truth_check=...))"]
    rep = validate(root, ground_truth_check=check_ground_truth)
    assert rep.failed == 1 and "labels/sample_0006.json: label 6 camera 1" in "\n".join(rep.lines)


def test_a_dataset_with_ground_truth_disabled_has_nothing_to_check(tmp_path, cli, capsys):
    config = tmp_path / "off.yaml"
    config.write_text(
        yaml.safe_dump({"image_size": 32, "frames": 8, "ground_truth": {"enabled": False}})
    )
    root = tmp_path / "ds"
    assert run_cli("--n", 4, "--out", root, "--config", config, "--workers", 1, "--quiet") == 0
    code, out = _validate(cli, capsys, root)
    assert code == 0 and "ground truth" not in out, out
