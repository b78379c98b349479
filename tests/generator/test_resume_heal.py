"""--resume repairs damaged checkpointed samples, byte for byte, and never seals an edited label."""

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from generator.dataformat.layout import Layout

N = 24
BASE = ["--n", N, "--workers", 1, "--checkpoint-every", 10, "--quiet"]
SHARDS = ["--format", "shards", "--shard-size", 4]


def tree_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every sample file (videos, labels, shards) and manifest."""
    out = {}
    for sub in ("videos", "labels", "shards", "checkpoints"):
        folder = root / sub
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                out[f"{sub}/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module", params=["pt", "shards"])
def made(request, tmp_path_factory):
    from .conftest import run_cli

    root = tmp_path_factory.mktemp(f"heal_{request.param}") / "ds"
    extra = SHARDS if request.param == "shards" else []
    assert run_cli("--out", root, *BASE, *extra) == 0
    return request.param, root, tree_digests(root)


def target(layout_name: str, root: Path) -> Path:
    """A file inside the second, sealed chunk."""
    if layout_name == "shards":
        return root / "shards" / "shard_0010.tar.zst"
    return Layout(root, 4).video(13)


def truncate(p):
    p.write_bytes(p.read_bytes()[:100])


def zero_bytes(p):
    p.write_bytes(b"")


def zero_fill(p):
    p.write_bytes(bytes(p.stat().st_size))


def delete(p):
    p.unlink()


def folder(p):
    p.unlink()
    p.mkdir()
    (p / "inside").write_text("x")


def fifo(p):
    p.unlink()
    os.mkfifo(p)


def link_to_device(p):
    p.unlink()
    p.symlink_to("/dev/zero")


def flip_byte(p):
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, zero_bytes, delete, folder, fifo, link_to_device])
def test_resume_repairs_a_damaged_sealed_file(made, damage, tmp_path, cli, capsys):
    layout_name, original, digests = made
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    damage(target(layout_name, root))
    extra = SHARDS if layout_name == "shards" else []
    assert cli("--out", root, *BASE[:-1], *extra, "--resume") == 0
    assert "repaired" in capsys.readouterr().err
    assert tree_digests(root) == digests
    assert cli("validate", root) == 0


@pytest.mark.parametrize("damage", [flip_byte, zero_fill])
def test_damage_of_the_same_size_is_repaired_with_verify(made, damage, tmp_path, cli, capsys):
    layout_name, original, digests = made
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    damage(target(layout_name, root))
    extra = SHARDS if layout_name == "shards" else []
    assert cli("--out", root, *BASE, *extra, "--resume") == 0  # sizes only: not seen
    assert tree_digests(root) != digests
    assert cli("--out", root, *BASE[:-1], *extra, "--resume", "--verify") == 0
    assert "repaired" in capsys.readouterr().err
    assert tree_digests(root) == digests


def test_an_edited_sealed_label_is_repaired_without_verify(made, tmp_path, cli):
    layout_name, original, digests = made
    if layout_name == "shards":
        pytest.skip("labels live inside the shards")
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    path = Layout(root, 4).label(3)
    label = json.loads(path.read_text())
    label["class_label"] = (label["class_label"] + 1) % 4
    path.write_text(json.dumps(label))
    assert cli("--out", root, *BASE, "--resume") == 0
    assert tree_digests(root) == digests


def test_a_label_edited_after_the_last_checkpoint_is_not_sealed(made, tmp_path, cli):
    layout_name, original, digests = made
    if layout_name == "shards":
        pytest.skip("an unsealed shard is checked whole by the shard plan")
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    (root / "checkpoints" / "checkpoint_24.json").unlink()  # samples 20-23: not sealed yet
    (root / "metadata.json").unlink()
    path = Layout(root, 4).label(21)
    label = json.loads(path.read_text())
    label["future_position"] = [0.0, 0.0, 0.0]
    path.write_text(json.dumps(label, sort_keys=True, separators=(",", ":")) + "\n")
    assert cli("--out", root, *BASE, "--resume") == 0
    samples = {k: v for k, v in digests.items() if not k.startswith("checkpoints/")}
    assert {k: v for k, v in tree_digests(root).items() if k in samples} == samples


@pytest.mark.parametrize("damage", [delete, folder, fifo])
def test_resume_repairs_a_damaged_sealed_label(made, damage, tmp_path, cli, capsys):
    layout_name, original, digests = made
    if layout_name == "shards":
        pytest.skip("labels live inside the shards")
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    damage(Layout(root, 4).label(14))
    assert cli("--out", root, *BASE[:-1], "--resume") == 0
    assert "repaired 1 " in capsys.readouterr().err
    assert tree_digests(root) == digests


def test_a_manifest_whose_bytes_cannot_be_rendered_again_is_one_line_exit_1(
    made, tmp_path, cli, capsys
):
    layout_name, original, _ = made
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    manifest_path = root / "checkpoints" / "checkpoint_20.json"
    manifest = json.loads(manifest_path.read_text())
    if layout_name == "shards":
        manifest["shards"][0]["sha256"] = "0" * 64
        (root / "shards" / manifest["shards"][0]["name"]).unlink()
        extra = SHARDS
    else:
        manifest["samples"][2]["video_sha256"] = "0" * 64
        Layout(root, 4).video(12).unlink()
        extra = []
    manifest_path.write_text(json.dumps(manifest))
    assert cli("--out", root, *BASE, *extra, "--resume") == 1
    err = capsys.readouterr().err
    assert "cannot repair" in err and len(err.strip().splitlines()) == 1
    assert "was made by another generator release or its manifest was edited" in err


def _state(root: Path) -> dict[str, object]:
    """Every entry under ``root``: a regular file's bytes, else its kind (a FIFO is not read)."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        mode = os.lstat(p).st_mode
        out[str(p.relative_to(root))] = p.read_bytes() if stat.S_ISREG(mode) else stat.S_IFMT(mode)
    return out


def cut_to_5_bytes(p):
    p.write_bytes(p.read_bytes()[:5])


MISSING = object()


def _edit_entry(key, value=MISSING):
    def edit(p):
        manifest = json.loads(p.read_text())
        if value is MISSING:
            del manifest["samples"][1][key]
        else:
            manifest["samples"][1][key] = value
        p.write_text(json.dumps(manifest))

    edit.__name__ = f"entry_{key}_{'missing' if value is MISSING else type(value).__name__}"
    return edit


def _slow(damage):
    """A variant of a kind the default suite already covers: run by ``make test-slow``."""
    return pytest.param(damage, marks=pytest.mark.slow, id=damage.__name__)


MANIFEST_DAMAGE = [
    cut_to_5_bytes,
    folder,
    fifo,
    _edit_entry("video_sha256"),
    _slow(link_to_device),
    _slow(_edit_entry("stem")),
    _slow(_edit_entry("video_bytes", "big")),
    _slow(_edit_entry("video_bytes", None)),
]


@pytest.mark.parametrize("damage", MANIFEST_DAMAGE, ids=lambda d: d.__name__)
def test_a_damaged_manifest_is_kept_without_resume_and_repaired_with_it(
    made, damage, tmp_path, subprocess_cli, cli
):
    """Without --resume nothing changes (one line, exit 2), and the intact manifests after
    the damaged one stay; with it the dataset is whole again. In a subprocess with a
    timeout: a FIFO once hung the run."""
    layout_name, original, digests = made
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    damage(root / "checkpoints" / "checkpoint_10.json")
    extra = SHARDS if layout_name == "shards" else []
    before = _state(root)
    run = subprocess_cli("--out", root, *BASE, *extra, timeout=120)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "pass --resume" in run.stderr
    assert _state(root) == before
    run = subprocess_cli("--out", root, *BASE, *extra, "--resume", timeout=120)
    assert run.returncode == 0, run.stderr
    samples = {k: v for k, v in digests.items() if not k.startswith("checkpoints/")}
    assert {k: v for k, v in tree_digests(root).items() if k in samples} == samples
    assert cli("validate", root) == 0


@pytest.mark.parametrize("damage", [fifo, _slow(link_to_device)], ids=lambda d: d.__name__)
def test_a_fifo_or_device_for_fingerprint_or_manifest_is_one_line(
    made, damage, tmp_path, subprocess_cli
):
    """generate (with and without --resume), preflight and convert never read a FIFO (it
    hung them) or a link to /dev/zero (read whole); each says so in one line."""
    layout_name, original, _ = made
    extra = SHARDS if layout_name == "shards" else []
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    damage(root / "checkpoints" / "fingerprint.json")
    for resume in ([], ["--resume"]):
        run = subprocess_cli("--out", root, *BASE, *extra, *resume, timeout=120)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert "fingerprint.json is" in run.stderr
    shutil.rmtree(root)
    shutil.copytree(original, root)
    damage(root / "checkpoints" / "checkpoint_20.json")
    run = subprocess_cli("preflight", "--n", N, "--out", root, timeout=120)
    assert run.returncode == 0 and "OK: 14 samples need" in run.stdout, run.stderr
    run = subprocess_cli("convert", root, tmp_path / "new", "--format", "pt", timeout=120)
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "checkpoint_20.json is" in run.stderr and not (tmp_path / "new").exists()


@pytest.mark.parametrize("damage", [fifo, folder, _slow(link_to_device)], ids=lambda d: d.__name__)
def test_a_fifo_or_device_after_the_last_checkpoint_is_rendered_again(
    made, damage, tmp_path, subprocess_cli
):
    """An unsealed video, label or shard that is not a regular file is rendered again."""
    layout_name, original, digests = made
    extra = SHARDS if layout_name == "shards" else []
    paths = (
        [Path("shards/shard_0020.tar.zst")]
        if layout_name == "shards"
        else [Path("videos/sample_0021.pt"), Path("labels/sample_0022.json")]
    )
    for path in paths:
        root = tmp_path / path.stem
        shutil.copytree(original, root)
        (root / "checkpoints" / "checkpoint_24.json").unlink()  # samples 20-23: not sealed yet
        (root / "metadata.json").unlink()
        damage(root / path)
        run = subprocess_cli("--out", root, *BASE, *extra, "--resume", timeout=120)
        assert run.returncode == 0, run.stderr
        samples = {k: v for k, v in digests.items() if not k.startswith("checkpoints/")}
        assert {k: v for k, v in tree_digests(root).items() if k in samples} == samples


def test_a_manifest_recording_a_wrong_size_is_one_line_exit_1(made, tmp_path, cli, capsys):
    """A size no rendering gives (it was rendered again on every resume, and the manifest
    kept failing validate) is refused like any other edited manifest."""
    layout_name, original, _ = made
    root = tmp_path / "ds"
    shutil.copytree(original, root)
    path = root / "checkpoints" / "checkpoint_20.json"
    manifest = json.loads(path.read_text())
    record = manifest["shards"][0] if layout_name == "shards" else manifest["samples"][1]
    record["bytes" if layout_name == "shards" else "video_bytes"] = 10**30
    path.write_text(json.dumps(manifest))
    extra = SHARDS if layout_name == "shards" else []
    assert cli("--out", root, *BASE, *extra, "--resume") == 1
    err = capsys.readouterr().err
    assert "cannot repair" in err and len(err.strip().splitlines()) == 1, err
