"""Shards read by the field's own readers: the real ``webdataset`` library and Hugging Face
``datasets``, through the code the README shows (run from the README itself)."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from generator.dataformat.sources import open_source

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "#### Reading shards with webdataset and Hugging Face datasets"
ARGS = ["--n", 12, "--workers", 1, "--checkpoint-every", 8, "--format", "shards"]
ARGS += ["--shard-size", 4, "--quiet"]


def readme_code() -> dict:
    """The README's reading snippets, executed: the functions they define, by name."""
    text = README.read_text()
    section = text[text.index(HEADING) :]
    section = section[: section.index("\n#", len(HEADING))]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, re.M | re.S)
    assert blocks, "the README's shards section lost its code"
    namespace: dict = {}
    exec(compile("\n".join(blocks), f"{README}#reading-shards", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def code() -> dict:
    return readme_code()


@pytest.fixture(scope="module")
def plain_dataset(tmp_path_factory) -> Path:
    """12 samples in plain .tar shards of 4 (the zstd twin is ``small_shard_dataset``)."""
    from generator.__main__ import main

    root = tmp_path_factory.mktemp("wds") / "plain"
    assert main([str(a) for a in [*ARGS, "--out", root, "--compression", "none"]]) == 0
    return root


def expected(root: Path) -> list[tuple[str, np.ndarray, dict]]:
    """Every sample as the project's own reader gives it, in index order."""
    meta = json.loads((root / "metadata.json").read_text())
    source = open_source(root, meta, verify=True)
    out = []
    for i in range(meta["total_samples"]):
        video, label = source.read(i)
        out.append((source.layout.stem(i), video.numpy(), label))
    return out


def assert_same_samples(got, root: Path, label_of=lambda label: label) -> None:
    """``got`` (key, video, label) holds exactly the dataset's samples 0..n-1, in order."""
    got, want = list(got), expected(root)
    assert [k for k, _, _ in got] == [k for k, _, _ in want]
    assert len(want) == 12
    for (key, video, label), (_, ref_video, ref_label) in zip(got, want, strict=True):
        assert isinstance(video, np.ndarray) and video.dtype == np.uint8, key
        assert video.shape == ref_video.shape and np.array_equal(video, ref_video), key
        assert label_of(label) == ref_label, key


def test_webdataset_reads_plain_tar_shards_directly(code, plain_dataset):
    import webdataset as wds

    urls = sorted(str(p) for p in (plain_dataset / "shards").iterdir())
    assert urls and all(u.endswith(".tar") for u in urls)
    first = next(iter(wds.WebDataset(urls, shardshuffle=False)))  # no decoder: raw members
    assert first["__key__"] == "sample_0000" and set(first) >= {"npy", "json"}
    assert_same_samples(code["plain_samples"](plain_dataset), plain_dataset)


def test_webdataset_reads_zstd_shards_through_the_zstd_command(code, small_shard_dataset):
    if shutil.which("zstd") is None:
        pytest.skip("the zstd command is not installed: webdataset's pipe: route needs it")
    assert_same_samples(code["zstd_samples"](small_shard_dataset), small_shard_dataset)


def test_webdataset_reads_zstd_shards_with_a_python_opener(code, small_shard_dataset):
    assert_same_samples(code["zstd_samples_in_python"](small_shard_dataset), small_shard_dataset)


def test_webdataset_cannot_open_zstd_shards_as_plain_tars(small_shard_dataset):
    """Why the README routes .tar.zst through zstd: a plain open is an error, not silence."""
    import tarfile

    import webdataset as wds

    if "zst" in tarfile.TarFile.OPEN_METH:
        pytest.skip("this Python's tarfile reads zstd itself (3.14+)")
    urls = sorted(str(p) for p in (small_shard_dataset / "shards").iterdir())
    with pytest.raises(tarfile.ReadError):
        next(iter(wds.WebDataset(urls, shardshuffle=False)))


def _without_none(value):
    """A Hugging Face label without the keys it fills with None (other samples' keys)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


@pytest.mark.slow  # about 13 s, most of it importing `datasets`; webdataset reads them above
def test_hugging_face_datasets_loads_plain_tar_shards(code, plain_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    samples = code["hf_samples"](plain_dataset, cache_dir=str(tmp_path / "hf"))
    assert_same_samples(samples, plain_dataset, label_of=_without_none)
