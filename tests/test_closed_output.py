"""``prog | head -1``: a reader that closes the pipe early ends a command quietly (exit 1,
nothing on stderr), and what the command wrote to disk is kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trajkit.cli import quiet_on_closed_output

ROOT = Path(__file__).resolve().parents[1]
TINY = "frames: 4\nimage_size: 16\ncameras: {azimuths_deg: [20.0], elevations_deg: [30.0]}\n"


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """``python -m ARGS`` whose stdout is a pipe nobody reads any more."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=300,
        )
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("closed")
    config = folder / "tiny.yaml"
    config.write_text(TINY)
    out = folder / "ds"
    done = run_into_closed_pipe(
        "generator", "--n", "8", "--out", str(out), "--workers", "1", "--config", str(config)
    )
    assert (done.returncode, done.stderr) == (1, "")
    return out


def test_generate_into_a_closed_pipe_keeps_the_whole_dataset(tiny_dataset):
    """The summary line is the only stdout write, after the dataset is complete."""
    assert (tiny_dataset / "metadata.json").exists()
    check = subprocess.run(
        [sys.executable, "-m", "generator", "validate", str(tiny_dataset), "--quick"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert check.returncode == 0, check.stdout


@pytest.mark.parametrize(
    "command",
    [("extractors", "list"), ("generator", "validate", "--quick")],
    ids=["extractors-list", "generator-validate"],
)
def test_a_closed_output_pipe_is_a_quiet_exit_1(tiny_dataset, command):
    args = [*command, str(tiny_dataset)] if command[0] == "generator" else list(command)
    done = run_into_closed_pipe(*args)
    assert done.returncode == 1
    assert done.stderr == ""  # no traceback, not even the failed flush at exit


def test_a_broken_pipe_that_is_not_the_output_still_raises():
    """A worker's or a socket's pipe breaking is an error to report, not a reader gone."""

    @quiet_on_closed_output
    def main() -> int:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        main()


def test_an_output_that_refuses_writes_is_one_line(tiny_dataset):
    """``validate DS > report.txt`` on a full disk: the reason in one line, exit 1."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "generator", "validate", "--quick", str(tiny_dataset)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=300,
        )
    assert done.returncode == 1
    assert done.stderr == "error: cannot write the output: No space left on device\n"


def test_an_output_without_the_characters_gets_escapes(tiny_dataset, tmp_path):
    """A path the output's encoding cannot spell (``PYTHONIOENCODING=ascii``) is escaped as on
    stderr, not a UnicodeEncodeError."""
    named = tmp_path / "donn\u00e9es"
    named.symlink_to(tiny_dataset, target_is_directory=True)
    done = subprocess.run(
        [sys.executable, "-m", "generator", "validate", "--quick", str(named)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"},
        timeout=300,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert b"donn\\xe9es: all checks hold" in done.stdout


def test_a_write_error_of_the_output_is_not_taken_for_the_commands_own(monkeypatch, capsys):
    """A handler of the command's own OSErrors (a full disk at its checkpoint) must not see a
    failed print as one of them."""

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    @quiet_on_closed_output
    def main() -> int:
        try:
            print("epoch 1 done")
        except OSError:
            return 3  # "cannot write last.pt"
        return 0

    monkeypatch.setattr(sys, "stdout", Full())
    assert main() == 1
    assert capsys.readouterr().err == "error: cannot write the output: No space left on device\n"


def test_a_command_started_with_stdout_closed_runs_as_with_nowhere_to_print(tiny_dataset):
    """``prog >&-``: Python has no sys.stdout and print drops what it is given; the wrapper
    of the output and the exit's flush were an AttributeError traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "generator", "validate", "--quick", str(tiny_dataset)],
        preexec_fn=lambda: os.close(1),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert (done.returncode, done.stderr) == (0, "")
