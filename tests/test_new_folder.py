"""trajkit.lock.new_folder: a folder written whole or not at all, by one writer."""

import subprocess
import sys
from pathlib import Path

import pytest

from trajkit.lock import FolderLock, NewFolderError, new_folder


def test_what_the_block_writes_stays_when_it_ends(tmp_path):
    given = tmp_path / "given"
    given.mkdir()
    for root in (tmp_path / "a" / "b", given):
        with new_folder(root) as work:
            (work / "x").write_text("1")
            (work / "d").mkdir()
        assert sorted(p.name for p in root.iterdir()) == ["d", "x"]  # no lock, no temporary
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]


def test_nothing_is_at_the_final_name_until_the_block_ends(tmp_path):
    """Before, the block wrote straight into it: a run killed outright (kill -9) left a
    smaller set that verified clean and blocked the next run as "not empty"."""
    given = tmp_path / "given"
    given.mkdir()
    for root in (tmp_path / "new", given):
        with new_folder(root) as work:
            (work / "x").write_text("1")
            assert not (root / "x").exists() and work.name.startswith(".tmp-")
        assert (root / "x").is_file()


@pytest.mark.parametrize("given", [False, True], ids=["new folder", "given empty folder"])
def test_a_killed_runs_temporary_is_cleared_by_the_next_run(tmp_path, given):
    root = tmp_path / "out"
    if given:
        root.mkdir()
    code = (
        "import os, sys; from pathlib import Path; from trajkit.lock import new_folder\n"
        "with new_folder(Path(sys.argv[1])) as work:\n"
        "    (work / 'half').write_text('1'); os.kill(os.getpid(), 9)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code, str(root)], cwd=repo, timeout=60)
    assert not (root / "half").exists()
    assert root.exists() == given  # nothing at the final name but what was given
    with new_folder(root) as work:
        assert list(work.iterdir()) == [work / ".lock"]  # the half-written file is gone
        (work / "whole").write_text("1")
    assert [p.name for p in root.iterdir()] == ["whole"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError, ValueError])
def test_a_block_that_stops_leaves_nothing_of_its_own(tmp_path, stop):
    made, given = tmp_path / "made", tmp_path / "given"
    given.mkdir()
    for root in (made, given):
        with pytest.raises(stop), new_folder(root) as work:
            (work / "half").mkdir()
            (work / "half" / "x").write_text("1")
            (work / "file").write_text("1")
            (work / "link").symlink_to(tmp_path)  # removed, not followed
            raise stop
    assert not made.exists()
    assert list(given.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["given"]


def test_a_stop_while_the_entries_move_up_leaves_nothing(tmp_path, monkeypatch):
    given = tmp_path / "given"
    given.mkdir()
    real = Path.rename

    def stop_at_second(self, target):
        if self.name == "b":
            raise KeyboardInterrupt
        return real(self, target)

    monkeypatch.setattr(Path, "rename", stop_at_second)
    with pytest.raises(KeyboardInterrupt), new_folder(given) as work:
        (work / "a").write_text("1")
        (work / "b").write_text("1")
    assert list(given.iterdir()) == []


def test_a_folder_in_the_way_of_the_temporary_is_not_removed(tmp_path):
    (tmp_path / ".tmp-out").mkdir()
    (tmp_path / ".tmp-out" / "mine").write_text("keep")
    with (
        pytest.raises(NewFolderError, match="not a temporary of ours"),
        new_folder(tmp_path / "out"),
    ):
        pass
    assert (tmp_path / ".tmp-out" / "mine").read_text() == "keep"


def test_a_folder_with_files_or_a_writer_is_refused_untouched(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine").write_text("keep")
    with pytest.raises(NewFolderError, match="is not empty"), new_folder(full):
        pass
    assert (full / "mine").read_text() == "keep"
    busy = tmp_path / "busy"
    with new_folder(busy), pytest.raises(NewFolderError, match="being written by process"):
        with new_folder(busy):
            pass
    assert list(busy.iterdir()) == []  # the first one's folder, untouched by the second
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
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary
