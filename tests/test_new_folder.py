"""trajkit.lock.new_folder: a folder written whole or not at all, by one writer."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trajkit.files import hidden_name
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
def test_a_folder_name_of_255_bytes_is_written(tmp_path, given):
    """The temporary was .tmp-NAME: too long for a legal name of 251 to 255 bytes."""
    root = tmp_path / ("b" * 255)
    if given:
        root.mkdir()
    with new_folder(root) as work:
        assert len(work.name) < 30
        (work / "x").write_text("1")
    assert [p.name for p in root.iterdir()] == ["x"] and os.listdir(tmp_path) == [root.name]


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


def test_what_others_write_into_the_given_folder_meanwhile_is_kept(tmp_path):
    """Entries were moved up into the given folder one by one, and a stop or a clash removed
    everything in it: files someone else put there during the run were deleted."""
    given = tmp_path / "given"
    given.mkdir()
    with pytest.raises(NewFolderError, match="not empty any more"), new_folder(given) as work:
        (work / "ALLSTIMULI").mkdir()
        (given / "ALLSTIMULI").mkdir()
        (given / "ALLSTIMULI" / "mine.jpeg").write_text("keep")
        (given / "notes.txt").write_text("keep")
    assert sorted(p.name for p in given.rglob("*")) == ["ALLSTIMULI", "mine.jpeg", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given"]  # our temporary is gone
    with pytest.raises(KeyboardInterrupt), new_folder(tmp_path / "again") as work:
        (tmp_path / "again").mkdir()
        (tmp_path / "again" / "theirs").write_text("keep")
        raise KeyboardInterrupt
    assert (tmp_path / "again" / "theirs").read_text() == "keep"


@pytest.mark.parametrize("kind", ["link to a finished folder", "file", "dangling link"])
def test_something_else_at_the_temporary_s_name_is_refused_untouched(tmp_path, kind):
    """A link there led the run to empty and fill the folder it points to (any folder a
    command has finished with holds an empty .lock)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("important")
    (victim / ".lock").write_text("")
    temporary = tmp_path / hidden_name("out")
    if kind == "file":
        temporary.write_text("mine")
    else:
        temporary.symlink_to(victim if kind.startswith("link") else tmp_path / "nowhere")
    with (
        pytest.raises(NewFolderError, match=f"{temporary.name} is in the way and not a temporary"),
        new_folder(tmp_path / "out"),
    ):
        pass
    assert (victim / "keep.txt").read_text() == "important"
    assert os.path.lexists(temporary) and not (tmp_path / "out").exists()


def test_a_folder_in_the_way_of_the_temporary_is_not_removed(tmp_path):
    (tmp_path / hidden_name("out")).mkdir()
    (tmp_path / hidden_name("out") / "mine").write_text("keep")
    with (
        pytest.raises(NewFolderError, match="not a temporary of ours"),
        new_folder(tmp_path / "out"),
    ):
        pass
    assert (tmp_path / hidden_name("out") / "mine").read_text() == "keep"


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
    with pytest.raises(NewFolderError, match="cannot write") as caught:
        with new_folder(tmp_path / "file" / "d"):
            pass
    assert caught.value.exit_code == 2  # the folder given: bad input


def test_a_folder_made_for_a_lock_that_fails_goes_again(tmp_path, monkeypatch):
    import errno

    def full(self):
        self.path.touch()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FolderLock, "acquire", full)
    with pytest.raises(NewFolderError, match="No space left") as caught:
        with new_folder(tmp_path / "new"):
            pass
    assert caught.value.exit_code == 1  # a failed write, as a full disk is everywhere else
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary
