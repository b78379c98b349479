"""validate passes a good dataset and names each kind of damage."""

import hashlib
import json
import os
import shutil

import pytest

from generator.config import CLASS_NAMES
from generator.dataformat.checks import Report, balance_problems
from generator.dataformat.validate import validate


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


def test_a_stray_file_among_the_manifests_is_caught(copy):
    (copy / "checkpoints" / "checkpoint_99.json.bak").write_text("{}")
    failed, text = _failed(copy)
    assert failed and "checkpoints/checkpoint_99.json.bak is not part of the dataset" in text


@pytest.mark.parametrize("fmt", ["pt", "shards"])
def test_a_class_with_no_samples_is_counted_as_zero(tmp_path, cli, fmt):
    root = tmp_path / fmt
    assert cli("--n", 2, "--out", root, "--workers", 1, "--quiet", "--format", fmt) == 0
    rep = validate(root)
    balance = next(line for line in rep.lines if "class balance" in line)
    counts = [int(part.rsplit(" ", 1)[1]) for part in balance.rsplit(": ", 1)[1].split(", ")]
    assert rep.failed == 0 and sorted(counts) == [0, 0, 1, 1], balance


def test_a_wider_stem_width_is_read_from_the_metadata(copy):
    """Datasets over 10,000 samples name files with five digits or more."""
    for sub in ("videos", "labels"):
        for p in sorted((copy / sub).iterdir()):
            p.rename(p.with_name(p.name.replace("sample_", "sample_0")))
    for p in [copy / "metadata.json", copy / "checkpoints" / "fingerprint.json"]:
        record = json.loads(p.read_text())
        record["stem_width"] = 5
        p.write_text(json.dumps(record))
    for p in (copy / "checkpoints").glob("checkpoint_*.json"):
        manifest = json.loads(p.read_text())
        for e in manifest["samples"]:
            e["stem"] = e["stem"].replace("sample_", "sample_0")
        p.write_text(json.dumps(manifest))
    failed, text = _failed(copy)
    assert failed == 0, text


def test_positions_must_run_to_the_future_frame(copy):
    path = copy / "labels" / "sample_0004.json"
    label = json.loads(path.read_text())
    label["positions"] = label["positions"][:-1]
    path.write_text(json.dumps(label))
    failed, text = _failed(copy)
    assert failed and "sample_0004.json: positions must be 37 points of 3 coordinates" in text


def test_imbalanced_set_is_caught(copy):
    # Relabel every Linear sample as Circular, keeping labels self-consistent.
    for p in (copy / "labels").glob("*.json"):
        label = json.loads(p.read_text())
        if label["class_label"] == 0:
            label.update(class_label=1, class_name="Circular")
            p.write_text(json.dumps(label))
    failed, text = _failed(copy, quick=True)
    assert "FAIL class balance: 5 problem(s)" in text
    assert (
        "classes are imbalanced: {'Linear': 0, 'Circular': 12, 'Helical': 6, 'Parabolic': 6}"
        in text
    )
    assert "metadata class_distribution" in text
    assert "the first 10 samples are imbalanced: {1: 6, 2: 2, 3: 2}" in text


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
    assert "sample_0004.json: future_position must have 3 coordinates" in text


def test_missing_folder_is_bad_input(tmp_path, cli, capsys):
    assert cli("validate", tmp_path / "nope") == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'} is not a folder\n"


def test_samples_no_manifest_lists_are_caught(copy, cli):
    (copy / "checkpoints" / "checkpoint_20.json").unlink()
    failed, text = _failed(copy)
    assert failed and "10 samples are in no checkpoint manifest (first: 10)" in text
    assert cli("validate", copy) == 1


# ---------------------------------------------------------------- issue 22: never a traceback


def _validate_cli(cli, capsys, root, *args):
    capsys.readouterr()
    code = cli("validate", root, *args)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_zero_byte_video_is_one_line_not_a_worker_traceback(copy, cli, capsys):
    (copy / "videos" / "sample_0002.pt").write_bytes(b"")
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1
    assert [line for line in text.splitlines() if "sample_0002.pt" in line] == [
        f"       - videos/sample_0002.pt: 0 bytes, its manifest records {_video_bytes(copy, 2)}"
    ]


def test_zero_filled_video_is_named_once(copy, cli, capsys):
    video = copy / "videos" / "sample_0006.pt"
    video.write_bytes(bytes(video.stat().st_size))
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1
    assert len([line for line in text.splitlines() if "sample_0006.pt" in line]) == 1


def test_quick_catches_a_truncated_video_by_its_recorded_size(copy, cli, capsys):
    video = copy / "videos" / "sample_0001.pt"
    os.truncate(video, video.stat().st_size // 2)
    code, text = _validate_cli(cli, capsys, copy, "--quick")
    assert code == 1 and "videos/sample_0001.pt:" in text and "its manifest records" in text


@pytest.mark.timeout(60)
def test_fifo_and_dev_zero_are_refused_without_reading(copy, cli, capsys):
    os.unlink(copy / "videos" / "sample_0003.pt")
    os.mkfifo(copy / "videos" / "sample_0003.pt")
    (copy / "labels" / "sample_0004.json").unlink()
    (copy / "labels" / "sample_0004.json").symlink_to("/dev/zero")
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1
    assert "videos/sample_0003.pt is a FIFO, not a regular file" in text
    assert "labels/sample_0004.json is a symlink out of the dataset folder" in text


def test_unknown_format_is_refused(copy, cli, capsys):
    meta = json.loads((copy / "metadata.json").read_text())
    meta["format"] = "zip"
    (copy / "metadata.json").write_text(json.dumps(meta))
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1 and "has format 'zip'; this reader knows pt, shards" in text


@pytest.mark.parametrize(
    "name, key, value",
    [
        ("metadata.json", "total_samples", "24"),
        ("metadata.json", "stem_width", None),
        ("metadata.json", "video_shape", [4, 32]),
        ("checkpoints/fingerprint.json", "seed", "0"),
        ("checkpoints/fingerprint.json", "config", []),
    ],
)
def test_a_wrong_field_type_is_one_line(copy, cli, capsys, name, key, value):
    path = copy / name
    obj = json.loads(path.read_text())
    obj[key] = value
    path.write_text(json.dumps(obj))
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1 and "Traceback" not in text
    named = [line for line in text.splitlines() if line.startswith("       - ")]
    assert len(named) == 1 and key in named[0], text


def test_fingerprint_that_disagrees_with_the_metadata_is_named(copy, cli, capsys):
    path = copy / "checkpoints" / "fingerprint.json"
    fp = json.loads(path.read_text())
    fp["seed"] = 5
    path.write_text(json.dumps(fp))
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1 and "fingerprint.json differs from metadata.json in 'seed'" in text


def test_label_with_missing_keys_is_one_line(copy, cli, capsys):
    path = copy / "labels" / "sample_0005.json"
    label = json.loads(path.read_text())
    del label["positions"], label["index"]
    path.write_text(json.dumps(label))
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1
    assert [line for line in text.splitlines() if "sample_0005.json" in line] == [
        "       - sample_0005.json: Field required"
    ]


def test_a_manifest_the_metadata_lists_may_not_vanish(copy, cli, capsys):
    (copy / "checkpoints" / "checkpoint_20.json").unlink()
    code, text = _validate_cli(cli, capsys, copy)
    assert (
        code == 1 and "checkpoints/checkpoint_20.json is missing (metadata.json lists it)" in text
    )


def _video_bytes(root, index):
    for path in sorted((root / "checkpoints").glob("checkpoint_*.json")):
        for e in json.loads(path.read_text())["samples"]:
            if e["index"] == index:
                return e["video_bytes"]
    raise AssertionError(f"no manifest lists sample {index}")


# ---------------------------------------------------------------- class balance, each check alone


def _meta(counts):
    return {
        "total_samples": sum(counts),
        "class_distribution": dict(zip(CLASS_NAMES, counts, strict=True)),
        "classes": list(CLASS_NAMES),
    }


def test_whole_set_imbalance_alone():
    classes = dict(enumerate([0, 0, 0, 1, 2, 3]))
    assert balance_problems(classes, _meta([3, 1, 1, 1]), []) == [
        "classes are imbalanced: {'Linear': 3, 'Circular': 1, 'Helical': 1, 'Parabolic': 1}"
    ]
    assert balance_problems(dict(enumerate([0, 0, 1, 2, 3])), _meta([2, 1, 1, 1]), []) == []


def test_a_class_missing_entirely_is_an_imbalance():
    classes = dict(enumerate([0, 0, 1, 1, 2, 2]))  # no Parabolic at all
    problems = balance_problems(classes, _meta([2, 2, 2, 0]), [])
    assert problems == [
        "classes are imbalanced: {'Linear': 2, 'Circular': 2, 'Helical': 2, 'Parabolic': 0}"
    ]


def test_metadata_counts_alone():
    classes = dict(enumerate([0, 1, 2, 3]))
    problems = balance_problems(classes, _meta([2, 1, 1, 0]), [])
    assert len(problems) == 1 and problems[0].startswith("metadata class_distribution")


def test_prefix_imbalance_alone():
    classes = dict(enumerate([0, 0, 1, 1, 2, 2, 3, 3]))  # balanced as a whole
    assert balance_problems(classes, _meta([2, 2, 2, 2]), [8]) == []
    assert balance_problems(classes, _meta([2, 2, 2, 2]), [4]) == [
        "the first 4 samples are imbalanced: {0: 2, 1: 2}"
    ]
    assert balance_problems(classes, _meta([2, 2, 2, 2]), [3]) == [
        "the first 3 samples are imbalanced: {0: 2, 1: 1}"
    ]


# ---------------------------------------------------------------- what mutation testing asked for


def _set_entry(root, index, **changes):
    for manifest in (root / "checkpoints").glob("checkpoint_*.json"):
        m = json.loads(manifest.read_text())
        for e in m["samples"]:
            if e["index"] == index:
                e.update(changes)
        manifest.write_text(json.dumps(m))


@pytest.fixture
def shard_copy(tmp_path, small_shard_dataset):
    dst = tmp_path / "shards_copy"
    shutil.copytree(small_shard_dataset, dst)
    return dst


def test_good_datasets_give_exactly_these_lines(small_dataset, small_shard_dataset):
    assert validate(small_dataset).lines == [
        "ok   metadata: format v1",
        "ok   fingerprint: agrees with metadata.json",
        "ok   counts: 24 videos, 24 labels",
        "ok   no orphan or temporary files",
        "ok   checkpoint manifests: 3 manifests cover all samples",
        "ok   label schema: 24 labels",
        "ok   class balance: Linear 6, Circular 6, Helical 6, Parabolic 6",
        "ok   videos: type and size, checksums and tensor shapes",
    ]
    assert validate(small_shard_dataset, quick=True).lines == [
        "ok   metadata: format v1",
        "ok   fingerprint: agrees with metadata.json",
        "ok   counts: 3 shards",
        "ok   no orphan or temporary files",
        "ok   checkpoint manifests: 2 manifests cover all samples",
        "ok   shard checksums (quick: type and size only): 3 shards",
        "ok   samples (quick: labels only): 12 labels",
        "ok   class balance: Linear 3, Circular 3, Helical 3, Parabolic 3",
    ]
    assert validate(small_shard_dataset).lines[5:7] == [
        "ok   shard checksums: 3 shards",
        "ok   samples: 12 labels, videos, checksums and tensor shapes",
    ]


def test_cli_quick_skips_hashing_and_says_whether_all_checks_hold(copy, cli, capsys):
    video = copy / "videos" / "sample_0005.pt"
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0x01
    video.write_bytes(bytes(data))
    code, text = _validate_cli(cli, capsys, copy, "--quick")
    assert code == 0 and text.splitlines()[-1] == f"{copy}: all checks hold"
    code, text = _validate_cli(cli, capsys, copy)
    assert code == 1 and text.splitlines()[-1] == f"{copy}: 1 check(s) FAILED"


def test_cli_help_names_the_command(cli, capsys):
    with pytest.raises(SystemExit):
        cli("validate", "--help")
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m generator validate") and "skip reading videos" in out


def test_a_tensor_its_manifest_vouches_for_that_does_not_load_is_named(copy):
    video = copy / "videos" / "sample_0002.pt"
    data = b"not a zip file"
    video.write_bytes(data)
    _set_entry(copy, 2, video_bytes=len(data), video_sha256=hashlib.sha256(data).hexdigest())
    failed, text = _failed(copy)
    assert failed and "videos/sample_0002.pt is damaged" in text


def test_quick_shards_skip_the_whole_shard_hash(shard_copy):
    shard = sorted((shard_copy / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0x01  # in the tar's end-of-archive frame: every sample still reads
    shard.write_bytes(bytes(data))
    assert _failed(shard_copy, quick=True)[0] == 0
    failed, text = _failed(shard_copy)
    assert failed == 1 and f"shards/{shard.name}: SHA-256 differs from its manifest" in text


def test_shard_sample_the_manifest_disagrees_with_is_named(shard_copy):
    _set_entry(shard_copy, 5, video_sha256="0" * 64)
    failed, text = _failed(shard_copy)
    assert "#sample_0005.npy: SHA-256 differs from its manifest" in text
    assert "#sample_0005.json does not vouch for its video" in text


def test_a_label_vouching_for_another_video_is_named_even_quick(copy):
    """A label whose ``video_sha256`` is not its manifest's, its own SHA-256 recorded with it
    (the manifest edited since): only the shard layout's check named it; ``--quick`` too,
    as it reads every label."""
    path = copy / "labels" / "sample_0003.json"
    label = json.loads(path.read_text())
    label["video_sha256"] = json.loads((copy / "labels" / "sample_0004.json").read_text())[
        "video_sha256"
    ]
    data = json.dumps(label).encode()
    path.write_bytes(data)
    _set_entry(copy, 3, label_sha256=hashlib.sha256(data).hexdigest())
    for quick in (True, False):
        failed, text = _failed(copy, quick)
        assert failed == 1 and "labels/sample_0003.json does not vouch for its video" in text, text


def test_an_unreadable_label_is_not_also_an_imbalance(copy):
    (copy / "labels" / "sample_0009.json").write_bytes(b"")
    rep = validate(copy, quick=True)
    assert (
        rep.failed == 1
        and "ok   class balance: Linear 6, Circular 6, Helical 6, Parabolic 6" in rep.lines
    )


def test_report_lines_count_problems_and_show_at_most_five():
    rep = Report()
    rep.check("a", [])
    rep.check("b", [], "fine")
    rep.check("c", ["one"])
    rep.check("d", [str(k) for k in range(7)])
    assert rep.failed == 2
    assert rep.lines == [
        "ok   a",
        "ok   b: fine",
        "FAIL c: 1 problem(s)",
        "       - one",
        "FAIL d: 7 problem(s) (+2 more)",
        *(f"       - {k}" for k in range(5)),
    ]
