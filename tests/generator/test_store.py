"""Video files go to disk from aligned memory with direct I/O, or normally where that is refused."""

import errno
import hashlib
import io
import json
import os

import numpy as np
import pytest
import torch

from generator import store
from generator.store import Layout, MemoryFile, SampleWriter, write_memory_file


@pytest.fixture
def direct_opens(monkeypatch):
    """The paths opened with O_DIRECT (direct I/O re-enabled for the test)."""
    monkeypatch.setattr(store, "_direct_io", True)
    opened = []
    real_open = os.open

    def spy(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            opened.append(os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return opened


def _memory_file(data: bytes, capacity: int = 1 << 21) -> MemoryFile:
    buf = MemoryFile(capacity)
    for k in range(0, len(data), 1000):  # in pieces, as torch.save writes
        buf.write(data[k : k + 1000])
    return buf


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 17, 1_573_568])
def test_direct_write_gives_exactly_the_bytes(tmp_path, direct_opens, size):
    data = os.urandom(size)
    buf = _memory_file(data, capacity=4096)  # grows several times for the larger sizes
    assert buf.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    write_memory_file(tmp_path / "f.bin", buf)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert len(direct_opens) == 1 and store._direct_io  # this filesystem takes direct I/O
    assert os.listdir(tmp_path) == ["f.bin"]


def test_filesystem_refusing_direct_io_gets_a_normal_write(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_direct_io", True)
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    data = os.urandom(10_000)
    write_memory_file(tmp_path / "a.bin", _memory_file(data))
    assert (tmp_path / "a.bin").read_bytes() == data
    assert not store._direct_io  # not tried again in this process
    write_memory_file(tmp_path / "b.bin", _memory_file(data))
    assert (tmp_path / "b.bin").read_bytes() == data


def test_direct_write_refused_midway_is_rewritten_whole(tmp_path, direct_opens, monkeypatch):
    real_write = os.write

    def short_then_refuse(fd, data):
        if len(data) > 4096 and len(data) % 4096 == 0:  # the first, aligned write: 4 KiB short
            return real_write(fd, data[:-4096])
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "write", short_then_refuse)
    data = os.urandom(50_000)
    write_memory_file(tmp_path / "f.bin", _memory_file(data))
    monkeypatch.setattr(os, "write", real_write)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert not store._direct_io


def test_other_write_errors_propagate_and_leave_no_temporary(tmp_path, direct_opens, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as e:
        write_memory_file(tmp_path / "f.bin", _memory_file(b"x" * 9000))
    assert e.value.errno == errno.ENOSPC
    assert store._direct_io and os.listdir(tmp_path) == []


def _layout(tmp_path) -> Layout:
    layout = Layout(tmp_path, 4)
    layout.make_dirs()
    return layout


def test_sample_writer_writes_what_torch_save_would_and_labels_vouch_for_it(tmp_path, direct_opens):
    layout = _layout(tmp_path)
    rng = np.random.default_rng(0)
    videos = [
        torch.from_numpy(rng.integers(0, 256, (2, 3, 3, 8, 8), dtype=np.uint8)) for _ in range(5)
    ]
    with SampleWriter(layout) as writer:
        for i, video in enumerate(videos):
            writer.add(i, video, {"index": i, "class_label": i % 4})
    assert [e["index"] for e in writer.entries] == list(range(5))
    assert len(direct_opens) == 5
    for i, (video, entry) in enumerate(zip(videos, writer.entries, strict=True)):
        expected = io.BytesIO()
        torch.save(video, expected)
        data = layout.video(i).read_bytes()
        assert data == expected.getvalue()
        label = json.loads(layout.label(i).read_bytes())
        sha = hashlib.sha256(data).hexdigest()
        assert label == {"index": i, "class_label": i % 4, "video_sha256": sha}
        assert entry == store.check_written_sample(layout, i)
    assert not list(tmp_path.rglob(f"{store.TMP_PREFIX}*"))


def test_sample_writer_raises_a_failed_write_after_waiting_for_the_rest(tmp_path):
    layout = _layout(tmp_path)
    layout.labels.rmdir()  # every label write fails
    video = torch.zeros((2, 2), dtype=torch.uint8)
    writer = SampleWriter(layout)
    with pytest.raises(FileNotFoundError):
        with writer:
            for i in range(4):
                writer.add(i, video, {"index": i, "class_label": 0})
    assert writer._thread._shutdown  # nothing is still writing once the error is out
    assert not list(tmp_path.rglob(f"{store.TMP_PREFIX}*"))
