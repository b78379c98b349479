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

from generator.dataset import DatasetError, TrajectoryDataset
from generator.validate import validate

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


def test_one_sample_is_read_without_the_rest_of_its_shard(shard_dataset, tmp_path):
    import shutil

    copy = tmp_path / "c"
    shutil.copytree(shard_dataset, copy)
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
