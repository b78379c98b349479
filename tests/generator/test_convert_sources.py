"""convert of a source that is not simply whole (held by a writer, extended past its metadata)
and into a folder a convert left unfinished: what each command says and keeps."""

import json
import os
import shutil

import pytest

from generator.dataformat.layout import CONVERTING, unfinished_convert
from trajkit.lock import FolderLock


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def convert_args(src, dst, *extra):
    return ["convert", src, dst, "--format", "shards", "--shard-size", 4, "--workers", 1, *extra]


@pytest.fixture
def extended(small_dataset, tmp_path, cli):
    """``small_dataset`` (24 samples) extended to 34 and stopped before its metadata.json was
    rewritten: what an extension killed after its first new checkpoint leaves."""
    root = tmp_path / "ext"
    shutil.copytree(small_dataset, root)
    old = (root / "metadata.json").read_bytes()
    assert cli("--n", 34, "--out", root, "--resume", "--workers", 1, "--checkpoint-every", 10) == 0
    (root / "metadata.json").write_bytes(old)
    assert (root / "checkpoints" / "checkpoint_34.json").exists()
    return root


def test_a_source_a_writer_holds_is_refused_naming_it(small_dataset, tmp_path, cli, capsys):
    src = tmp_path / "src"
    shutil.copytree(small_dataset, src)
    with FolderLock(src / ".lock"):
        assert cli(*convert_args(src, tmp_path / "new")) == 1
    err = one_line(capsys)
    assert f"{src} is being written by process {os.getpid()} on " in err
    assert not (tmp_path / "new").exists()


def test_an_interrupted_extension_converts_what_its_metadata_vouches_for(
    extended, tmp_path, cli, capsys
):
    """Its manifests past the metadata were converted too: an IndexError traceback."""
    dst = tmp_path / "new"
    assert cli(*convert_args(extended, dst)) == 0
    err = capsys.readouterr().err
    assert "checkpoints past the 24 samples of its metadata.json" in err and "Traceback" not in err
    assert json.loads((dst / "metadata.json").read_text())["total_samples"] == 24
    assert sorted(p.name for p in (dst / "checkpoints").glob("checkpoint_*")) == [
        "checkpoint_10.json",
        "checkpoint_20.json",
        "checkpoint_24.json",
    ]
    assert cli("validate", dst) == 0


def test_a_source_whose_manifests_do_not_end_where_its_metadata_does_is_refused(
    extended, tmp_path, cli, capsys
):
    """A manifest across the metadata's end (20..34 here) cannot be cut: one line, nothing
    written, never fewer samples than the metadata counts."""
    meta = json.loads((extended / "metadata.json").read_text())
    del meta["checkpoints"]  # as an older generator wrote it
    (extended / "metadata.json").write_text(json.dumps(meta))
    ck = extended / "checkpoints"
    m24, m34 = (json.loads((ck / f"checkpoint_{n}.json").read_text()) for n in (24, 34))
    m34["start"], m34["samples"] = 20, m24["samples"] + m34["samples"]
    (ck / "checkpoint_34.json").write_text(json.dumps(m34))
    (ck / "checkpoint_24.json").unlink()
    assert cli(*convert_args(extended, tmp_path / "new")) == 1
    assert "no checkpoint manifest ends at sample 24" in one_line(capsys)
    assert not (tmp_path / "new").exists()


@pytest.fixture
def half_converted(small_dataset, tmp_path, cli):
    """A convert killed before its metadata.json: its marker, manifests and shards."""
    dst = tmp_path / "half"
    assert cli(*convert_args(small_dataset, dst)) == 0
    (dst / "metadata.json").unlink()
    (dst / CONVERTING).write_bytes(b"")
    return dst


def test_a_half_converted_folder_is_named_as_such_with_how_to_finish_it(
    half_converted, tmp_path, cli, capsys
):
    assert cli("validate", half_converted) == 1
    out = capsys.readouterr().out
    assert "unfinished convert (run the same python -m generator convert again" in out
    assert "--resume" not in out
    assert cli("preview", half_converted, "--out", tmp_path / "p.png") == 1
    assert "unfinished convert" in one_line(capsys)


def test_generator_resume_refuses_a_half_converted_folder(half_converted, cli, capsys):
    """It finished the dataset but left the marker, which validate failed for ever."""
    before = sorted(p.name for p in half_converted.rglob("*"))
    args = ["--n", 24, "--out", half_converted, "--resume", "--format", "shards"]
    assert cli(*args, "--shard-size", 4, "--workers", 1) == 2
    assert "is an unfinished convert; run the same python -m generator convert" in one_line(capsys)
    assert sorted(p.name for p in half_converted.rglob("*")) == before


def test_convert_replaces_only_its_own_unfinished_output(
    half_converted, small_dataset, tmp_path, cli, capsys
):
    """A folder with the marker and a metadata.json (a generator --resume finished it) is a
    whole dataset: a convert into it wiped it and started again."""
    assert unfinished_convert(half_converted)
    assert cli(*convert_args(small_dataset, half_converted)) == 0  # its own: done again
    assert not unfinished_convert(half_converted) and not (half_converted / CONVERTING).exists()
    (half_converted / CONVERTING).write_bytes(b"")
    assert not unfinished_convert(half_converted)  # metadata.json: whole
    kept = (half_converted / "metadata.json").read_bytes()
    assert cli("convert", small_dataset, half_converted, "--format", "pt", "--workers", 1) == 2
    assert "is not empty" in one_line(capsys)
    assert (half_converted / "metadata.json").read_bytes() == kept
    assert not unfinished_convert(tmp_path)  # no marker


def test_a_convert_removes_its_marker_before_it_writes_metadata(
    small_dataset, tmp_path, cli, monkeypatch
):
    """Stopped between the two, the folder must not hold both (a whole dataset the next
    convert would refuse, and validate fail for the marker)."""
    import generator.dataformat.metadata as metadata

    seen = []
    real = metadata.write_metadata

    def note_the_marker(layout, *args, **kw):
        seen.append((layout.root / CONVERTING).exists())
        return real(layout, *args, **kw)

    monkeypatch.setattr(metadata, "write_metadata", note_the_marker)
    assert cli(*convert_args(small_dataset, tmp_path / "new")) == 0
    assert seen == [False]


def test_the_destination_is_named_as_such(small_dataset, tmp_path, cli, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert cli(*convert_args(small_dataset, fifo)) == 2
    assert f"the destination {fifo} is a file, not a folder" in one_line(capsys)
