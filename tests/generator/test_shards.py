"""--format shards: same tensors as "pt", a plain WebDataset tar underneath, seekable, resumable."""

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import zstandard

from generator.dataformat.dataset import DatasetError, TrajectoryDataset
from generator.dataformat.validate import validate

ARGS = (
    "--workers",
    1,
    "--checkpoint-every",
    10,
    "--quiet",
    "--format",
    "shards",
    "--shard-size",
    4,
)


@pytest.fixture(scope="session")
def shard_dataset(tmp_path_factory):
    """The same 24 samples as ``small_dataset``, in shards of 4 inside chunks of 10."""
    from generator.__main__ import main

    root = tmp_path_factory.mktemp("shards") / "small"
    assert main(["--n", "24", "--out", str(root), *map(str, ARGS)]) == 0
    return root


@pytest.fixture(scope="session")
def plain_shard_dataset(tmp_path_factory):
    """The same 24 samples again, in plain (uncompressed) tar shards."""
    from generator.__main__ import main

    root = tmp_path_factory.mktemp("shards") / "plain"
    assert main(["--n", "24", "--out", str(root), *map(str, ARGS), "--compression", "none"]) == 0
    return root


def test_layout_and_metadata(shard_dataset):
    names = sorted(p.name for p in (shard_dataset / "shards").iterdir())
    starts = [0, 4, 8, 10, 14, 18, 20]
    assert names == [f"shard_{s:04d}.tar.zst" for s in starts]
    meta = json.loads((shard_dataset / "metadata.json").read_text())
    assert meta["format"] == "shards" and meta["shards"]["shard_size"] == 4
    assert not (shard_dataset / "videos").exists()
    assert validate(shard_dataset).failed == 0


def test_dataset_yields_identical_tensors_from_both_layouts(shard_dataset, small_dataset):
    for split in ("train", "val", "test"):
        a, b = TrajectoryDataset(small_dataset, split), TrajectoryDataset(shard_dataset, split)
        assert a.indices == b.indices and len(a) > 0
        for i in range(min(len(a), 6)):
            x, y = a[i], b[i]
            assert torch.equal(x["video"], y["video"]), (split, i)
            assert torch.equal(x["label"], y["label"])
            assert torch.equal(x["future_position"], y["future_position"])


def test_a_shard_is_a_plain_webdataset_tar(shard_dataset, small_dataset):
    path = shard_dataset / "shards" / "shard_0004.tar.zst"
    with open(path, "rb") as f:
        stream = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar}
    assert sorted(members) == [
        f"sample_{i:04d}.{ext}" for i in range(4, 8) for ext in ("json", "npy")
    ]
    video = np.load(io.BytesIO(members["sample_0005.npy"]), allow_pickle=False)
    ref = torch.load(small_dataset / "videos" / "sample_0005.pt", weights_only=True)
    assert np.array_equal(video, ref.numpy())
    label = json.loads(members["sample_0005.json"])
    ref_label = json.loads((small_dataset / "labels" / "sample_0005.json").read_text())
    assert {k: v for k, v in label.items() if k != "video_sha256"} == {
        k: v for k, v in ref_label.items() if k != "video_sha256"
    }


@pytest.mark.parametrize("fixture", ["shard_dataset", "plain_shard_dataset"])
def test_one_sample_is_read_without_the_rest_of_its_shard(fixture, request, tmp_path):
    import shutil

    copy = tmp_path / "c"
    shutil.copytree(request.getfixturevalue(fixture), copy)
    ds = TrajectoryDataset(copy, "train")
    target = ds.indices[0]
    entry = next(
        e
        for p in sorted((copy / "checkpoints").glob("checkpoint_*.json"))
        for e in json.loads(p.read_text())["samples"]
        if e["index"] == target
    )
    want = ds[0]["video"]
    # Wipe every byte of the shard except this sample's frame: a reader that decodes
    # the shard from its start would now fail.
    path = copy / "shards" / entry["shard"]
    data = bytearray(path.read_bytes())
    lo, hi = entry["offset"], entry["offset"] + entry["length"]
    data[:lo] = b"\0" * lo
    data[hi:] = b"\0" * (len(data) - hi)
    path.write_bytes(bytes(data))
    assert torch.equal(ds[0]["video"], want)
    other = next(
        i for i, j in enumerate(ds.indices) if j != target and _shard_of(copy, j) == entry["shard"]
    )
    with pytest.raises(DatasetError, match=entry["shard"]):
        ds[other]


def _shard_of(root, index):
    for p in (root / "checkpoints").glob("checkpoint_*.json"):
        for e in json.loads(p.read_text())["samples"]:
            if e["index"] == index:
                return e["shard"]
    return None


def test_damaged_shard_fails_validate(shard_dataset, tmp_path, cli, capsys):
    import shutil

    copy = tmp_path / "d"
    shutil.copytree(shard_dataset, copy)
    path = copy / "shards" / "shard_0014.tar.zst"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    (copy / "shards" / "shard_9999.tar.zst").write_bytes(b"stray")
    assert cli("validate", copy) == 1
    out = capsys.readouterr().out
    assert "FAIL shard checksums" in out and "shard_0014.tar.zst" in out
    assert "shards/shard_9999.tar.zst is not part of the dataset" in out
    (copy / "checkpoints" / "checkpoint_20.json").unlink()
    assert cli("validate", copy) == 1
    assert "10 samples are in no checkpoint manifest (first: 10)" in capsys.readouterr().out


def test_resume_keeps_whole_shards_and_rerenders_damaged_ones(shard_dataset, tmp_path, cli):
    root = tmp_path / "r"
    assert cli("--n", 24, "--out", root, *ARGS) == 0
    # A crash in the last chunk: no manifest, no metadata; one shard cut short, one left whole.
    (root / "checkpoints" / "checkpoint_24.json").unlink()
    (root / "metadata.json").unlink()
    cut = root / "shards" / "shard_0020.tar.zst"
    cut.write_bytes(cut.read_bytes()[:5000])
    whole = root / "shards" / "shard_0014.tar.zst"
    inode = os.stat(whole).st_ino
    (root / "shards" / "shard_0030.tar.zst").write_bytes(b"from a run aiming for more samples")
    assert cli("--n", 24, "--out", root, *ARGS, "--resume") == 0
    assert os.stat(whole).st_ino == inode, "a whole shard was rewritten"
    for p in (shard_dataset / "shards").iterdir():
        assert (root / "shards" / p.name).read_bytes() == p.read_bytes(), p.name
    a = json.loads((root / "checkpoints" / "checkpoint_24.json").read_text())["samples"]
    b = json.loads((shard_dataset / "checkpoints" / "checkpoint_24.json").read_text())["samples"]
    assert a == b
    assert validate(root).failed == 0


def test_extending_a_sharded_dataset_and_format_mismatch(shard_dataset, tmp_path, cli, capsys):
    root = tmp_path / "g"
    assert cli("--n", 10, "--out", root, *ARGS) == 0
    assert cli("--n", 24, "--out", root, "--resume", "--quiet") == 2
    err = capsys.readouterr().err
    assert "holds format 'shards'" in err and len(err.strip().splitlines()) == 1
    assert cli("--n", 24, "--out", root, *ARGS, "--resume") == 0
    for p in (shard_dataset / "shards").iterdir():
        assert (root / "shards" / p.name).read_bytes() == p.read_bytes(), p.name


def test_convert_both_ways_is_lossless(
    shard_dataset, small_dataset, tmp_path, cli, capsys, digests
):
    to_shards, back = tmp_path / "s", tmp_path / "p"
    assert (
        cli(
            "convert",
            small_dataset,
            to_shards,
            "--format",
            "shards",
            "--shard-size",
            4,
            "--workers",
            1,
        )
        == 0
    )
    assert "verified" in capsys.readouterr().out
    for p in (shard_dataset / "shards").iterdir():
        assert (to_shards / "shards" / p.name).read_bytes() == p.read_bytes(), p.name
    assert cli("convert", to_shards, back, "--format", "pt", "--workers", 1) == 0
    assert digests(back) == digests(small_dataset)
    assert validate(back).failed == 0
    assert cli("convert", small_dataset, back, "--format", "shards") == 2
    assert "is not empty" in capsys.readouterr().err


def test_preview_reads_shards(shard_dataset, tmp_path, cli):
    from PIL import Image

    png = tmp_path / "s.png"
    assert cli("preview", shard_dataset, "--index", 5, "--out", png) == 0
    assert Image.open(png).size[0] > 600


def test_sigkill_mid_shard_then_resume_matches_uninterrupted_run(tmp_path, cli, kill_when):
    """A run killed while shards are half-written resumes to the same shards and manifests."""
    args = ["--n", "48", "--format", "shards", "--shard-size", "4", "--checkpoint-every", "16"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert cli(*args, "--out", ref, "--workers", 1, "--quiet") == 0
    kill_when(  # into the second chunk
        [*args, "--out", killed, "--workers", 2, "--quiet"],
        lambda: (
            (killed / "checkpoints" / "checkpoint_16.json").exists()
            and len(list((killed / "shards").glob("*.tar.zst"))) >= 5
        ),
    )
    assert not (killed / "metadata.json").exists()
    assert cli(*args, "--out", killed, "--workers", 2, "--resume", "--quiet") == 0

    def shards(folder: Path) -> dict[str, str]:
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "shards").iterdir())
        }

    assert shards(killed) == shards(ref) and len(shards(ref)) == 12
    for end in (16, 32, 48):
        name = f"checkpoint_{end}.json"
        a, b = (json.loads((d / "checkpoints" / name).read_text()) for d in (ref, killed))
        assert a["samples"] == b["samples"] and a["shards"] == b["shards"]
    assert not list(killed.rglob(".tmp-*"))
    assert cli("validate", killed) == 0


def test_plain_shards_are_tars_with_the_same_samples(plain_shard_dataset, shard_dataset):
    names = sorted(p.name for p in (plain_shard_dataset / "shards").iterdir())
    assert names == [f"shard_{s:04d}.tar" for s in [0, 4, 8, 10, 14, 18, 20]]
    meta = json.loads((plain_shard_dataset / "metadata.json").read_text())
    assert meta["shards"]["compression"] == "none" and "zstd_level" not in meta["shards"]
    fp = json.loads((plain_shard_dataset / "checkpoints" / "fingerprint.json").read_text())
    assert fp["layout"] == {"format": "shards", "shard_size": 4, "compression": "none"}
    zstd_meta = json.loads((shard_dataset / "metadata.json").read_text())
    assert zstd_meta["shards"]["compression"] == "zstd", "what a reader compares, as with none"
    assert (
        zstd_meta["shards"]["zstd_level"] == 1
        and "compression"
        not in json.loads((shard_dataset / "checkpoints" / "fingerprint.json").read_text())[
            "layout"
        ]
    ), "a zstd dataset's fingerprint is as it was before --compression existed"
    # Plain tar: tarfile opens it without being told of any compression, seeking freely.
    with tarfile.open(plain_shard_dataset / "shards" / "shard_0004.tar") as tar:
        assert tar.getnames() == [
            f"sample_{i:04d}.{x}" for i in range(4, 8) for x in ("npy", "json")
        ]
        plain = tar.extractfile("sample_0005.npy").read()
    with open(shard_dataset / "shards" / "shard_0004.tar.zst", "rb") as f:
        stream = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        assert plain in stream.read(), "the decompressed zstd shard holds the same .npy bytes"
    assert validate(plain_shard_dataset).lines[2] == "ok   counts: 7 shards, plain tar"
    assert validate(plain_shard_dataset).failed == 0


def test_plain_shards_give_identical_tensors(plain_shard_dataset, small_dataset):
    for split in ("train", "test"):
        a, b = (
            TrajectoryDataset(small_dataset, split),
            TrajectoryDataset(plain_shard_dataset, split),
        )
        assert a.indices == b.indices and len(a) > 0
        for i in range(min(len(a), 4)):
            assert torch.equal(a[i]["video"], b[i]["video"]), (split, i)
            assert torch.equal(a[i]["future_position"], b[i]["future_position"])


def test_damaged_plain_shard_fails_validate(plain_shard_dataset, tmp_path, cli, capsys):
    import shutil

    copy = tmp_path / "d"
    shutil.copytree(plain_shard_dataset, copy)
    path = copy / "shards" / "shard_0014.tar"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert cli("validate", copy) == 1
    out = capsys.readouterr().out
    assert "FAIL shard checksums" in out and "shard_0014.tar:" in out
    # A manifest naming a shard of the other compression is named too.
    manifest = copy / "checkpoints" / "checkpoint_10.json"
    m = json.loads(manifest.read_text())
    m["shards"][0]["name"] = "shard_0000.tar.zst"
    for e in m["samples"][:4]:
        e["shard"] = "shard_0000.tar.zst"
    manifest.write_text(json.dumps(m))
    (copy / "shards" / "shard_0000.tar").rename(copy / "shards" / "shard_0000.tar.zst")
    assert cli("validate", copy) == 1
    out = capsys.readouterr().out
    assert "shards/shard_0000.tar.zst is not a .tar shard, as compression 'none'" in out


def test_resume_plain_keeps_whole_shards_and_refuses_the_other_compression(
    plain_shard_dataset, tmp_path, cli, capsys
):
    root = tmp_path / "r"
    plain = [*ARGS, "--compression", "none"]
    assert cli("--n", 24, "--out", root, *plain) == 0
    (root / "checkpoints" / "checkpoint_24.json").unlink()
    (root / "metadata.json").unlink()
    cut = root / "shards" / "shard_0020.tar"
    cut.write_bytes(cut.read_bytes()[:5000])
    whole = root / "shards" / "shard_0014.tar"
    inode = os.stat(whole).st_ino
    before = sorted(p.name for p in (root / "shards").iterdir())
    for other in ([*ARGS], [*ARGS, "--compression", "zstd", "--zstd-level", 3]):
        assert cli("--n", 24, "--out", root, *other, "--resume") == 2
        err = capsys.readouterr().err
        assert err.strip() == (
            f"error: {root} holds shards with compression 'none'; resume it with "
            "--compression none, or convert it with python -m generator convert"
        )
        assert sorted(p.name for p in (root / "shards").iterdir()) == before, "nothing is lost"
    assert cli("--n", 24, "--out", root, *plain, "--resume") == 0
    assert os.stat(whole).st_ino == inode, "a whole shard was rewritten"
    for p in (plain_shard_dataset / "shards").iterdir():
        assert (root / "shards" / p.name).read_bytes() == p.read_bytes(), p.name
    assert validate(root).failed == 0
    # Heal: a sealed plain shard that was damaged is rendered again, byte for byte.
    whole.write_bytes(b"x" * whole.stat().st_size)
    assert cli("--n", 24, "--out", root, *plain, "--resume", "--verify") == 0
    assert whole.read_bytes() == (plain_shard_dataset / "shards" / whole.name).read_bytes()


def test_resume_zstd_refuses_none(shard_dataset, tmp_path, cli, capsys):
    root = tmp_path / "z"
    assert cli("--n", 10, "--out", root, *ARGS) == 0
    assert cli("--n", 24, "--out", root, *ARGS, "--compression", "none", "--resume") == 2
    err = capsys.readouterr().err
    assert "holds shards with compression 'zstd'; resume it with --compression zstd" in err
    assert len(err.strip().splitlines()) == 1
    assert cli("--n", 24, "--out", root, *ARGS, "--compression", "zstd", "--resume") == 0
    for p in (shard_dataset / "shards").iterdir():
        assert (root / "shards" / p.name).read_bytes() == p.read_bytes(), p.name


def _exit_code(cli, *args) -> int:
    """The exit code of ``cli(*args)``, argparse's SystemExit included."""
    try:
        return cli(*args)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "args, message",
    [
        (["--zstd-level", "0"], "must be 1..19, got 0 (uncompressed: --compression none)"),
        (["--zstd-level", "20"], "must be 1..19, got 20"),
        (
            ["--compression", "none", "--zstd-level", "3"],
            "--zstd-level applies to --compression zstd only",
        ),
        (["--compression", "gzip"], "invalid choice: 'gzip'"),
    ],
)
@pytest.mark.parametrize("command", ["generate", "convert"])
def test_bad_compression_options_are_one_line(
    command, args, message, small_dataset, tmp_path, cli, capsys
):
    out = tmp_path / "o"
    if command == "generate":
        code = _exit_code(cli, "--n", 4, "--out", out, "--format", "shards", *args)
    else:
        code = _exit_code(cli, "convert", small_dataset, out, "--format", "shards", *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--compression", "none"], "--compression applies to --format shards only"),
        # --shard-size was taken and did nothing
        (["--shard-size", "4"], "--shard-size applies to --format shards only"),
        (
            ["--shard-size", "4", "--zstd-level", "3"],
            "--shard-size and --zstd-level apply to --format shards only",
        ),
    ],
)
@pytest.mark.parametrize("command", ["generate", "convert"])
def test_shard_options_need_shards(command, args, message, small_dataset, tmp_path, cli, capsys):
    out = tmp_path / "o"
    if command == "generate":
        code = _exit_code(cli, "--n", 1, "--out", out, "--workers", 1, *args)
    else:
        code = _exit_code(cli, "convert", small_dataset, out, "--format", "pt", *args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_convert_to_and_from_plain_shards_is_lossless(
    plain_shard_dataset, shard_dataset, small_dataset, tmp_path, cli, capsys, digests
):
    plain, zstd, back = tmp_path / "plain", tmp_path / "zstd", tmp_path / "pt"
    common = ["--format", "shards", "--shard-size", 4, "--workers", 1]
    assert cli("convert", small_dataset, plain, *common, "--compression", "none") == 0
    for p in (plain_shard_dataset / "shards").iterdir():
        assert (plain / "shards" / p.name).read_bytes() == p.read_bytes(), p.name
    assert validate(plain).failed == 0
    assert cli("convert", plain, zstd, *common) == 0  # none -> zstd: the way to change it
    for p in (shard_dataset / "shards").iterdir():
        assert (zstd / "shards" / p.name).read_bytes() == p.read_bytes(), p.name
    assert cli("convert", plain, back, "--format", "pt", "--workers", 1) == 0
    assert digests(back) == digests(small_dataset)
    assert "verified" in capsys.readouterr().out


def test_preview_reads_plain_shards(plain_shard_dataset, tmp_path, cli):
    from PIL import Image

    png = tmp_path / "p.png"
    assert cli("preview", plain_shard_dataset, "--index", 13, "--out", png) == 0
    assert Image.open(png).size[0] > 600


def test_train_gives_the_same_run_on_plain_shards_as_on_pt(tmp_path, cli):
    """``python -m train`` reads plain shards through the same reader: identical metrics."""
    from train.__main__ import main as train

    (tmp_path / "gen.yaml").write_text("image_size: 32\nframes: 8\n")
    tiny = ["--n", 48, "--workers", 1, "--config", tmp_path / "gen.yaml", "--quiet"]
    pt, plain = tmp_path / "pt", tmp_path / "plain"
    assert cli(*tiny, "--out", pt) == 0
    assert cli(*tiny, "--out", plain, "--format", "shards", "--compression", "none") == 0
    assert list((plain / "shards").glob("*.tar"))
    records = []
    for data in (pt, plain):
        out = tmp_path / f"run_{data.name}"
        args = ["--extractor", "i3d", "--data", data, "--epochs", 1, "--out", out]
        assert train([str(a) for a in [*args, "--workers", 0, "--threads", 1, "--quiet"]]) == 0
        lines = (out / "metrics.jsonl").read_text().splitlines()
        records.append(
            [{k: v for k, v in json.loads(x).items() if "second" not in k} for x in lines]
        )
    assert records[0] == records[1] and len(records[0]) == 2


def test_a_flipped_video_byte_in_a_plain_shard_is_caught_on_read(plain_shard_dataset, tmp_path):
    """A plain tar has no frame checksum, so the reader hashes each video it reads."""
    import shutil

    copy = tmp_path / "f"
    shutil.copytree(plain_shard_dataset, copy)
    ds = TrajectoryDataset(copy, "train")
    target = ds.indices[0]
    entry = next(
        e
        for p in sorted((copy / "checkpoints").glob("checkpoint_*.json"))
        for e in json.loads(p.read_text())["samples"]
        if e["index"] == target
    )
    path = copy / "shards" / entry["shard"]
    data = bytearray(path.read_bytes())
    data[entry["offset"] + 4096] ^= 0x01  # inside the .npy data, past both headers
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"{entry['shard']}#sample_.*SHA-256"):
        ds[0]


def test_a_shard_sample_of_another_dtype_or_shape_is_named(shard_dataset, monkeypatch):
    from generator.dataformat import shards

    ds = TrajectoryDataset(shard_dataset, "train")
    monkeypatch.setattr(shards, "decode_video", lambda data: np.zeros((2, 3), np.int16))
    with pytest.raises(
        DatasetError, match=r"sample \d+ has int16 \(2, 3\), expected uint8 \(4, 32"
    ):
        ds[0]


@pytest.mark.parametrize(
    "wrong", [np.zeros((4, 32, 3, 64, 32), np.uint8), np.zeros((4, 32, 3, 64, 64), np.int16)]
)
def test_validate_names_a_shard_sample_of_another_shape_or_dtype(shard_dataset, monkeypatch, wrong):
    from generator.dataformat import validate_shards

    monkeypatch.setattr(validate_shards, "decode_video", lambda data: wrong)
    rep = validate(shard_dataset)
    text = "\n".join(rep.lines)
    want = f"#sample_0000.npy: {wrong.dtype} {list(wrong.shape)}, expected uint8 [4, 32, 3, 64, 64]"
    assert rep.failed and want in text, text


def test_npy_headers_are_parsed_one_thread_at_a_time(monkeypatch):
    """numpy's header parse (ast.literal_eval) fails from concurrent threads on CPython 3.11."""
    from generator.dataformat import shards

    buf = io.BytesIO()
    np.save(buf, np.arange(6, dtype=np.uint8).reshape(2, 3))
    parse = np.lib.format.read_array_header_1_0
    held = []

    def parse_and_note(head):
        held.append(shards._HEADER_LOCK.locked())
        return parse(head)

    monkeypatch.setattr(np.lib.format, "read_array_header_1_0", parse_and_note)
    assert shards.decode_video(buf.getvalue()).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert held == [True]


@pytest.mark.parametrize("command", ["generate", "convert"])
def test_a_shard_size_no_json_reader_holds_is_one_line(
    command, small_dataset, tmp_path, cli, capsys
):
    """A 23-digit --shard-size was accepted and written into metadata.json and the
    fingerprint, past what int64 or double JSON readers hold; 2^32 - 1 is the most, as for seeds."""
    from generator.dataformat.shard_options import MAX_SHARD_SIZE

    def run(out, size):
        if command == "generate":
            args = ["--n", 2, "--workers", 1, "--quiet"]
            return _exit_code(cli, *args, "--out", out, "--format", "shards", "--shard-size", size)
        args = ["--workers", 1, "--quiet", "--format", "shards", "--shard-size", size]
        return _exit_code(cli, "convert", small_dataset, out, *args)

    for size in (MAX_SHARD_SIZE + 1, 99999999999999999999999):
        out = tmp_path / f"o{size}"
        assert run(out, size) == 2
        err = capsys.readouterr().err
        assert f"--shard-size: must be 1..{MAX_SHARD_SIZE}, got {size}" in err, err
        assert len(err.strip().splitlines()) == 1 and not out.exists()
    out = tmp_path / "largest"
    assert run(out, MAX_SHARD_SIZE) == 0
    meta = json.loads((out / "metadata.json").read_text())
    fingerprint = json.loads((out / "checkpoints" / "fingerprint.json").read_text())
    assert meta["shards"]["shard_size"] == fingerprint["layout"]["shard_size"] == MAX_SHARD_SIZE
