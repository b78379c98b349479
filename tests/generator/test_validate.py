"""validate passes a good dataset and names each kind of damage."""

import json
import shutil

import pytest

from generator.validate import validate


@pytest.fixture
def copy(tmp_path, small_dataset):
    dst = tmp_path / "copy"
    shutil.copytree(small_dataset, dst)
    return dst


def _failed(root, quick=False):
    rep = validate(root, quick=quick)
    return rep.failed, "\n".join(rep.lines)


def test_good_dataset_passes(small_dataset, cli):
    failed, text = _failed(small_dataset)
    assert failed == 0, text
    assert cli("validate", small_dataset) == 0
    assert cli("validate", small_dataset, "--quick") == 0


def test_flipped_byte_in_a_video_is_caught(copy, cli):
    video = copy / "videos" / "sample_0005.pt"
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the tensor payload: still loads, wrong bytes
    video.write_bytes(bytes(data))
    failed, text = _failed(copy)
    assert failed and "sample_0005.pt: SHA-256 differs" in text
    assert cli("validate", copy) == 1
    # --quick skips videos, so it cannot see this one.
    assert _failed(copy, quick=True)[0] == 0


def test_flipped_byte_in_a_label_is_caught_even_quick(copy):
    label = copy / "labels" / "sample_0003.json"
    label.write_text(label.read_text().replace('"class_label":', '"class_label": ', 1))
    failed, text = _failed(copy, quick=True)
    assert failed and "sample_0003.json: SHA-256 differs" in text


def test_missing_label_is_caught(copy):
    (copy / "labels" / "sample_0007.json").unlink()
    failed, text = _failed(copy)
    assert failed and "labels/sample_0007.json is missing" in text


def test_extra_and_temporary_files_are_caught(copy):
    (copy / "videos" / "sample_9999.pt").write_bytes(b"stray")
    (copy / "labels" / ".tmp-sample_0001.json.123").write_bytes(b"{")
    failed, text = _failed(copy)
    assert "videos/sample_9999.pt is not part of the dataset" in text
    assert ".tmp-sample_0001.json.123 (temporary)" in text


def test_imbalanced_set_is_caught(copy):
    meta = json.loads((copy / "metadata.json").read_text())
    # Relabel every Linear sample as Circular, keeping labels self-consistent.
    for p in (copy / "labels").glob("*.json"):
        label = json.loads(p.read_text())
        if label["class_label"] == 0:
            label.update(class_label=1, class_name="Circular")
            p.write_text(json.dumps(label))
    failed, text = _failed(copy, quick=True)
    assert "FAIL class balance" in text and "imbalanced" in text
    assert meta["class_distribution"]["Linear"] == 6


def test_damaged_tensor_is_named(copy):
    video = copy / "videos" / "sample_0002.pt"
    video.write_bytes(b"not a zip file".ljust(video.stat().st_size, b"\0"))
    failed, text = _failed(copy)
    assert "sample_0002.pt: SHA-256 differs from its manifest" in text


def test_label_schema_violation_is_named(copy):
    p = copy / "labels" / "sample_0004.json"
    label = json.loads(p.read_text())
    label["future_position"] = [1.0, 2.0]
    p.write_text(json.dumps(label))
    failed, text = _failed(copy, quick=True)
    assert "sample_0004.json: Value error, future_position must have 3 coordinates" in text


def test_missing_folder_is_bad_input(tmp_path, cli):
    assert cli("validate", tmp_path / "nope") == 2


def test_samples_no_manifest_lists_are_caught(copy, cli):
    (copy / "checkpoints" / "checkpoint_20.json").unlink()
    failed, text = _failed(copy)
    assert failed and "10 samples are in no checkpoint manifest (first: 10)" in text
    assert cli("validate", copy) == 1
