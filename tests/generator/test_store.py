"""Video files go to disk from aligned memory with direct I/O, or normally where that is refused."""

import datetime
import errno
import fcntl
import hashlib
import io
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.dataformat import layout as format_layout
from generator.dataformat import writer as format_writer
from generator.dataformat.layout import Layout
from generator.dataformat.writer import MemoryFile, SampleWriter, write_memory_file
from trajkit import files
from trajkit.lock import FolderLock, ForeignLockError, LockedError


@pytest.fixture
def direct_opens(monkeypatch):
    """The paths opened with O_DIRECT (direct I/O re-enabled for the test)."""
    monkeypatch.setattr(format_writer, "_direct_io", True)
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
    assert len(direct_opens) == 1 and format_writer._direct_io  # this filesystem takes direct I/O
    assert os.listdir(tmp_path) == ["f.bin"]


def test_filesystem_refusing_direct_io_gets_a_normal_write(tmp_path, monkeypatch):
    monkeypatch.setattr(format_writer, "_direct_io", True)
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    data = os.urandom(10_000)
    write_memory_file(tmp_path / "a.bin", _memory_file(data))
    assert (tmp_path / "a.bin").read_bytes() == data
    assert not format_writer._direct_io  # not tried again in this process
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
    assert not format_writer._direct_io


def test_other_write_errors_propagate_and_leave_no_temporary(tmp_path, direct_opens, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as e:
        write_memory_file(tmp_path / "f.bin", _memory_file(b"x" * 9000))
    assert e.value.errno == errno.ENOSPC
    assert format_writer._direct_io and os.listdir(tmp_path) == []


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
        assert entry == format_writer.check_written_sample(layout, i, 1 << 20, 1 << 20)
    assert not list(tmp_path.rglob(f"{files.TMP_PREFIX}*"))


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
    assert not list(tmp_path.rglob(f"{files.TMP_PREFIX}*"))


# ---------------------------------------------------------------- atomic writers: durable, whole or nothing


@pytest.fixture
def fsyncs(monkeypatch):
    """(name written, size on disk, names in its folder) at each os.fsync."""
    calls = []
    real = os.fsync

    def spy(fd):
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        calls.append((path.name, os.fstat(fd).st_size, sorted(os.listdir(path.parent))))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


@pytest.mark.parametrize(
    "write",
    [
        lambda p: files.write_atomic(p, b"12345"),
        lambda p: files.write_json_atomic(p, {"a": 1}),
        lambda p: files.save_torch_atomic(torch.zeros(3, dtype=torch.uint8), p),
    ],
)
def test_atomic_writers_fsync_the_whole_temporary_before_the_rename(tmp_path, fsyncs, write):
    path = tmp_path / "f.out"
    write(path)
    assert len(fsyncs) == 1
    name, size, present = fsyncs[0]
    assert name == files.temporary_beside(path).name and size == path.stat().st_size > 0
    assert present == [name]  # synced under the temporary name, renamed afterwards
    assert os.listdir(tmp_path) == ["f.out"]


def test_fsync_false_skips_it(tmp_path, fsyncs):
    files.write_atomic(tmp_path / "a", b"x", fsync=False)
    files.write_json_atomic(tmp_path / "b", [1], fsync=False)
    assert fsyncs == [] and (tmp_path / "a").read_bytes() == b"x"
    assert json.loads((tmp_path / "b").read_text()) == [1]


def test_a_full_disk_is_an_oserror_naming_the_file_even_inside_torch_save(tmp_path, monkeypatch):
    """ENOSPC at a write or a close names no file, and torch.save turns it into a
    RuntimeError of its own; the error that leaves is the errno, named for the target."""
    path = tmp_path / "last.pt"
    path.write_bytes(b"old")
    real_write = io.BufferedWriter.write

    class Full(io.BufferedWriter):
        def write(self, data):
            if len(data) > 8:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(self, data)

    monkeypatch.setattr(files, "open", lambda p, mode: Full(io.FileIO(p, mode)), raising=False)
    with pytest.raises(OSError) as e:
        files.save_torch_atomic({"w": torch.zeros(100)}, path)
    assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["last.pt"]
    with pytest.raises(OSError) as e:  # as torch's zip writer reports the failed write
        with files.open_atomic(path):
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")  # noqa: B904 - torch chains it so
    assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(path))
    with pytest.raises(FileNotFoundError) as e:  # the subclass is kept
        files.write_atomic(tmp_path / "gone" / "f", b"x")
    assert e.value.filename == str(tmp_path / "gone" / "f")
    with pytest.raises(KeyboardInterrupt):  # a stop stays a stop
        with files.open_atomic(path):
            try:
                raise OSError(errno.EIO, "I/O error")
            except OSError:
                raise KeyboardInterrupt from None


@pytest.mark.parametrize(
    "write",
    [
        lambda p: files.write_atomic(p, b"12345"),
        lambda p: files.write_json_atomic(p, {"a": 1}),
        lambda p: files.save_torch_atomic(torch.zeros(3, dtype=torch.uint8), p),
    ],
)
def test_a_name_of_up_to_255_bytes_is_written_through_a_short_temporary(tmp_path, write):
    """The temporary was .tmp-NAME.PID: too long for a legal name of 241 to 255 bytes."""
    for length in (250, 255):
        path = tmp_path / ("b" * length)
        write(path)
        assert path.stat().st_size > 0 and os.listdir(tmp_path) == [path.name]
        path.unlink()


def test_a_write_the_filesystem_refuses_is_an_error_naming_the_file_not_the_temporary(tmp_path):
    """The temporary's removal failed as its write had, and that error, naming the temporary,
    was the one told."""
    (tmp_path / "file").write_text("x")
    for path, code in [
        (tmp_path / ("b" * 256), errno.ENAMETOOLONG),
        (tmp_path / "file" / "f", errno.ENOTDIR),
    ]:
        with pytest.raises(OSError) as e:
            files.write_atomic(path, b"x")
        assert (e.value.errno, e.value.filename) == (code, str(path))
    assert os.listdir(tmp_path) == ["file"]


def test_temporaries_are_hidden_short_and_this_process_s_own(tmp_path):
    long, short = tmp_path / ("b" * 255), tmp_path / "a"
    temporary = files.temporary_beside(long)
    assert temporary.parent == tmp_path and temporary.name.startswith(files.TMP_PREFIX)
    assert len(temporary.name) == len(files.temporary_beside(short).name) < 40
    assert temporary.name.endswith(f".{os.getpid()}") and temporary != files.temporary_beside(short)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.open_atomic(path) as f:
            f.write(b"half")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


def test_json_is_sorted_indented_and_ends_with_a_newline(tmp_path):
    files.write_json_atomic(tmp_path / "j", {"b": 1, "a": [2]})
    assert (tmp_path / "j").read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
    assert format_layout.label_bytes({"b": 1, "a": 2}) == b'{"a":2,"b":1}\n'


def test_sha256_file_reads_in_chunks(tmp_path):
    data = os.urandom(10_000)
    (tmp_path / "f").write_bytes(data)
    assert files.sha256_file(tmp_path / "f", chunk=999) == hashlib.sha256(data).hexdigest()
    assert files.sha256_bytes(data) == hashlib.sha256(data).hexdigest()


def test_remove_temporaries_counts_only_temporary_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / f"{files.TMP_PREFIX}a.1").write_bytes(b"")
    (tmp_path / f"{files.TMP_PREFIX}b.2").write_bytes(b"")
    (tmp_path / f"{files.TMP_PREFIX}dir").mkdir()
    (tmp_path / "keep").write_bytes(b"")
    assert files.remove_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == [f"{files.TMP_PREFIX}dir", "keep", "sub"]


def test_read_json_names_a_missing_or_damaged_file(tmp_path):
    with pytest.raises(ValueError, match="gone.json is missing"):
        files.read_json(tmp_path / "gone.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad.json is damaged \("):
        files.read_json(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text('{"a": 1}')
    assert files.read_json(tmp_path / "ok.json") == {"a": 1}


@pytest.mark.parametrize("n, width", [(0, 4), (1, 4), (10_000, 4), (10_001, 5), (123_457, 6)])
def test_stem_width(n, width):
    assert format_layout.stem_width(n) == width


def test_layout_names_and_manifests_in_numeric_order(tmp_path):
    layout = Layout(tmp_path, 5)
    assert layout.video(7).name == "sample_00007.pt" and layout.label(7).name == "sample_00007.json"
    assert layout.shard(12).name == "shard_00012.tar.zst"
    layout.make_dirs("shards")
    assert layout.shards.is_dir() and not layout.videos.exists()
    for end in (100, 20, 3):
        layout.manifest(end).write_text("{}")
    (layout.checkpoints / "checkpoint_x.json").write_text("{}")
    assert [p.name for p in layout.manifests()] == [
        "checkpoint_3.json",
        "checkpoint_20.json",
        "checkpoint_100.json",
    ]


def test_check_written_sample_refuses_what_its_label_does_not_vouch_for(tmp_path):
    layout = _layout(tmp_path)
    with SampleWriter(layout) as writer:
        writer.add(0, torch.zeros(3, dtype=torch.uint8), {"index": 0, "class_label": 2})
    assert format_writer.check_written_sample(layout, 0, 1 << 20, 1 << 20)["class_label"] == 2
    assert format_writer.check_written_sample(layout, 1, 1 << 20, 1 << 20) is None  # not written
    label = json.loads(layout.label(0).read_text())
    layout.label(0).write_text(json.dumps({**label, "index": 5}))
    assert format_writer.check_written_sample(layout, 0, 1 << 20, 1 << 20) is None
    layout.label(0).write_text(json.dumps(label))
    layout.video(0).write_bytes(layout.video(0).read_bytes() + b"!")
    assert format_writer.check_written_sample(layout, 0, 1 << 20, 1 << 20) is None


def test_only_einval_turns_direct_io_off(tmp_path, monkeypatch):
    monkeypatch.setattr(format_writer, "_direct_io", True)
    real_open = os.open

    def broken(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", broken)
    with pytest.raises(OSError) as e:
        write_memory_file(tmp_path / "f", _memory_file(b"x" * 5000))
    assert e.value.errno == errno.EIO and format_writer._direct_io and os.listdir(tmp_path) == []


def test_memory_file_pads_to_whole_blocks_with_zeros():
    buf = _memory_file(b"\xff" * 5000, capacity=4096)
    padded = bytes(buf.padded())
    assert len(padded) == 8192 and padded[:5000] == b"\xff" * 5000 and padded[5000:] == bytes(3192)
    assert bytes(buf.view()) == b"\xff" * 5000
    buf.reset()
    assert buf.size == 0 and buf.sha.hexdigest() == hashlib.sha256().hexdigest()


def test_memory_file_grows_past_twice_its_size_in_one_write():
    data = os.urandom(5 * 4096 + 3)  # more than double the capacity at once
    buf = _memory_file(b"", capacity=4096)
    buf.write(data)
    assert bytes(buf.view()) == data and buf.sha.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_direct_write_is_not_written_again_through_the_page_cache(
    tmp_path, direct_opens, monkeypatch
):
    def no_buffered_write(*args, **kwargs):
        raise AssertionError("the direct write succeeded; a buffered rewrite doubles the I/O")

    monkeypatch.setattr(format_writer, "open", no_buffered_write, raising=False)
    write_memory_file(tmp_path / "f.bin", _memory_file(b"abc" * 3000))
    assert (tmp_path / "f.bin").read_bytes() == b"abc" * 3000 and len(direct_opens) == 1


def test_layout_dirs_can_be_made_again_over_an_existing_folder(tmp_path):
    for fmt in ("pt", "pt", "shards", "shards"):  # resume and convert make them over what exists
        Layout(tmp_path).make_dirs(fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints",
        "labels",
        "shards",
        "videos",
    ]


def test_sync_filesystem_syncs_the_folders_own_filesystem(tmp_path, monkeypatch):
    seen = []

    class Libc:
        def syncfs(self, fd):
            seen.append(os.fstat(fd).st_dev)
            return 0

    monkeypatch.setattr(files, "_libc", lambda: Libc())
    monkeypatch.setattr(os, "sync", lambda: seen.append("sync"))
    files.sync_filesystem(tmp_path)
    assert seen == [os.stat(tmp_path).st_dev]


def test_sync_filesystem_uses_syncfs_and_falls_back_to_sync(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "sync", lambda: synced.append("sync"))
    files.sync_filesystem(tmp_path)
    assert synced == []  # syncfs on this Linux
    monkeypatch.setattr(files, "_libc", lambda: None)
    files.sync_filesystem(tmp_path)
    assert synced == ["sync"]


# ---------------------------------------------------------------- the lock


def test_lock_names_its_holder_and_is_free_again_after_release(tmp_path):
    path = tmp_path / ".lock"
    with FolderLock(path):
        info = json.loads(path.read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        with pytest.raises(LockedError, match=f"is being written by process {os.getpid()} on "):
            FolderLock(path).acquire()
    assert path.exists() and path.read_text() == ""  # kept, emptied
    second = FolderLock(path).acquire()
    second.release()
    second.release()  # twice is harmless


def test_a_lock_of_a_file_unlinked_as_it_was_taken_is_dropped_for_the_file_now_there(
    tmp_path, monkeypatch
):
    """A holder that unlinks its lock file as it releases (a download, a folder removed when
    unused) let a process that had opened the file just before lock the unlinked file: a
    third then locked the new file at the path, and two held "the" lock at once."""
    import trajkit.lock as lock_module

    path = tmp_path / ".download.lock"
    first = FolderLock(path).acquire()
    real_flock, raced = fcntl.flock, []

    def flock(fd, op):  # the first holder unlinks and releases between our open and our flock
        if not raced and op & fcntl.LOCK_EX:
            raced.append(fd)
            path.unlink()
            first.release()
        return real_flock(fd, op)

    monkeypatch.setattr(lock_module.fcntl, "flock", flock)
    second = FolderLock(path).acquire()
    monkeypatch.setattr(lock_module.fcntl, "flock", real_flock)
    held = os.fstat(second._fd)
    assert raced and path.exists(), "the lock held is of a file no longer there"
    assert (held.st_dev, held.st_ino) == (path.stat().st_dev, path.stat().st_ino)
    with pytest.raises(LockedError, match=f"process {os.getpid()}"):
        FolderLock(path).acquire()
    second.release()


def test_lock_file_says_since_when_in_iso_8601_and_is_not_executable(tmp_path):
    path = tmp_path / ".lock"
    with FolderLock(path):
        since = datetime.datetime.strptime(
            json.loads(path.read_text())["since"], "%Y-%m-%dT%H:%M:%S%z"
        )
        assert abs(since.timestamp() - time.time()) < 60
        assert stat.S_IMODE(path.stat().st_mode) & 0o111 == 0


def test_lock_held_by_unreadable_text_is_another_process(tmp_path):
    path = tmp_path / ".lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    os.write(holder, b"\xff garbage")
    try:
        with pytest.raises(LockedError, match="is being written by another process; wait"):
            FolderLock(path).acquire()
    finally:
        os.close(holder)
    # Released, the file is no holder's note: someone's file, refused and left as it was.
    with pytest.raises(ForeignLockError, match="is not a lock file of this project"):
        FolderLock(path).acquire()
    assert path.read_bytes() == b"\xff garbage"
    path.write_text("")
    with FolderLock(path):  # the kernel released it with its holder
        pass


@pytest.mark.parametrize("kind", ["a FIFO", "a folder", "a link to a new file", "a link to a lock"])
def test_a_lock_path_that_is_no_regular_file_is_refused_and_left(tmp_path, kind):
    """A FIFO was "Illegal seek"; a link made its target, wherever it pointed, the lock."""
    path, elsewhere = tmp_path / ".lock", tmp_path / "elsewhere"
    if kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "a folder":
        path.mkdir()
    else:
        if kind == "a link to a lock":
            elsewhere.write_text("")
        path.symlink_to(elsewhere)
    with pytest.raises(ForeignLockError, match=r"\.lock is not a regular file; move it away"):
        FolderLock(path).acquire()
    assert os.path.lexists(path) and (kind != "a link to a new file" or not elsewhere.exists())
    if kind == "a link to a lock":
        assert elsewhere.read_text() == ""


def test_drop_cached_advises_dontneed_for_each_file(tmp_path, monkeypatch):
    advised = []
    real = os.posix_fadvise

    def spy(fd, offset, length, advice):
        advised.append((os.readlink(f"/proc/self/fd/{fd}"), offset, length, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    (tmp_path / "a").write_bytes(b"x")
    files.drop_cached([tmp_path / "a", tmp_path / "gone"])
    assert advised == [(str(tmp_path / "a"), 0, 0, os.POSIX_FADV_DONTNEED)]


def test_sample_writer_keeps_at_most_depth_samples_in_flight(tmp_path, monkeypatch):
    """Memory stays at DEPTH serialised videos: the next add waits for the oldest write."""
    layout = _layout(tmp_path)
    gate = threading.Event()
    real_write = SampleWriter._write

    def held(self, index, buf, label):
        gate.wait(10)
        return real_write(self, index, buf, label)

    monkeypatch.setattr(SampleWriter, "_write", held)
    writer = SampleWriter(layout)
    video = torch.zeros(3, dtype=torch.uint8)
    for i in range(SampleWriter.DEPTH):
        writer.add(i, video, {"index": i, "class_label": 0})
    third = threading.Thread(target=writer.add, args=(9, video, {"index": 9, "class_label": 0}))
    third.start()
    third.join(0.3)
    assert third.is_alive()  # waits for a free slot
    gate.set()
    third.join(10)
    writer.close()
    assert [e["index"] for e in writer.entries] == [0, 1, 9]


def test_sample_writer_close_waits_for_a_write_still_running_after_a_failure(tmp_path, monkeypatch):
    layout = _layout(tmp_path)
    finished = []
    real_write = SampleWriter._write

    def first_fails_second_slow(self, index, buf, label):
        if index == 0:
            raise OSError(errno.EIO, "Input/output error")
        time.sleep(0.3)
        finished.append(index)
        return real_write(self, index, buf, label)

    monkeypatch.setattr(SampleWriter, "_write", first_fails_second_slow)
    writer = SampleWriter(layout)
    video = torch.zeros(3, dtype=torch.uint8)
    writer.add(0, video, {"index": 0, "class_label": 0})
    writer.add(1, video, {"index": 1, "class_label": 0})
    time.sleep(0.05)  # the second write is running: it cannot be cancelled
    with pytest.raises(OSError):
        writer.close()
    assert finished == [1]  # close returned only after it


def test_releasing_a_lock_never_taken_is_harmless(tmp_path):
    FolderLock(tmp_path / ".lock").release()
    assert not (tmp_path / ".lock").exists()


def test_a_lock_whose_note_a_full_disk_fails_closes_its_descriptor_and_is_free(
    tmp_path, monkeypatch
):
    """The descriptor stayed open, and with it the flock: the process's later lock on the
    folder said it was busy, by the process itself."""
    path = tmp_path / ".lock"

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    opened = len(os.listdir("/proc/self/fd"))
    with monkeypatch.context() as m:
        m.setattr(os, "pwrite", full)
        with pytest.raises(OSError, match="No space left"):
            FolderLock(path).acquire()
    assert len(os.listdir("/proc/self/fd")) == opened
    FolderLock(path).acquire().release()


def test_manifest_hashes_vouch_only_with_well_formed_sha256(tmp_path):
    from generator.dataformat.layout import manifest_hashes

    good, short = "a" * 64, "a" * 12
    manifest = tmp_path / "checkpoint_4.json"
    manifest.write_text(
        json.dumps(
            {
                "samples": [
                    {"stem": "sample_0000", "video_sha256": good, "label_sha256": short},
                    {"stem": "sample_0001", "video_sha256": ["a"] * 64, "label_sha256": good},
                ],
                "shards": [{"name": "shard_0000.tar.zst", "sha256": good}],
            }
        )
    )
    assert manifest_hashes(manifest) == {
        "videos/sample_0000.pt": good,
        "labels/sample_0001.json": good,
        "shards/shard_0000.tar.zst": good,
    }
    manifest.write_text("{not json")
    assert manifest_hashes(manifest) == {}


CHILD_OUTLIVES_PARENT = """
import os, sys, time
from trajkit.lock import FolderLock

FolderLock(sys.argv[1]).acquire()
if os.fork() == 0:  # a DataLoader worker, say
    time.sleep(60)
    os._exit(0)
os._exit(0)  # the parent dies holding the lock, as under kill -9
"""


def test_a_lock_goes_with_its_process_not_with_the_children_it_forked(tmp_path):
    """A forked DataLoader worker kept the run folder's lock about 5 s after a kill -9 of
    its trainer: a --resume then was refused naming the dead process."""
    import subprocess
    import sys

    lock = tmp_path / ".lock"
    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-c", CHILD_OUTLIVES_PARENT, str(lock)]
    subprocess.run(argv, cwd=root, check=True, timeout=60)
    try:
        FolderLock(lock).acquire().release()  # the child still sleeps
    finally:
        subprocess.run(["pkill", "-f", "a DataLoader worker, say"], check=False)
