"""trajkit.lock.new_folder: a folder written whole or not at all, by one writer."""

import pytest

from trajkit.lock import FolderLock, NewFolderError, new_folder


def test_what_the_block_writes_stays_when_it_ends(tmp_path):
    with new_folder(tmp_path / "a" / "b") as root:
        (root / "x").write_text("1")
    assert (tmp_path / "a" / "b" / "x").read_text() == "1"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError, ValueError])
def test_a_block_that_stops_leaves_nothing_of_its_own(tmp_path, stop):
    made, given = tmp_path / "made", tmp_path / "given"
    given.mkdir()
    for root in (made, given):
        with pytest.raises(stop), new_folder(root):
            (root / "half").mkdir()
            (root / "half" / "x").write_text("1")
            (root / "file").write_text("1")
            (root / "link").symlink_to(tmp_path)  # removed, not followed
            raise stop
    assert not made.exists()
    assert [p.name for p in given.iterdir()] == [".lock"] and tmp_path.is_dir()


def test_a_folder_with_files_or_a_writer_is_refused_untouched(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine").write_text("keep")
    with pytest.raises(NewFolderError, match="is not empty"), new_folder(full):
        pass
    assert (full / "mine").read_text() == "keep"
    busy = tmp_path / "busy"
    busy.mkdir()
    with FolderLock(busy / ".lock"):
        with pytest.raises(NewFolderError, match="being written by process"), new_folder(busy):
            pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(NewFolderError, match="cannot write"), new_folder(tmp_path / "file" / "d"):
        pass


def test_a_folder_made_for_a_lock_that_fails_goes_again(tmp_path, monkeypatch):
    import errno

    def full(self):
        self.path.touch()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FolderLock, "acquire", full)
    with pytest.raises(NewFolderError, match="No space left"), new_folder(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()
