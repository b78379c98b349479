"""Hostile command lines for every generator subcommand, run in-process.

Whatever the arguments (empty, newlines, -1, 0, 1e30, nan, unicode, a FIFO, a file, a folder,
a missing or over-long path where another goes, odd S3 addresses, repeated options, unknown
flags): no traceback, no hang, exit 0/1/2/130, a usage error is one line, nothing is written
outside the folder the command was given as its output, and push/pull never leave this
machine (moto stands in for S3; a connection to anything but loopback fails the test).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.__main__ import main

NUMBERS = ["-1", "0", "1e30", "nan", "inf", "-0", "0x10", "1_0", "99999999999999999999"]
TEXT = [
    "",
    " ",
    "\n",
    "a\nb",
    "a\x85b",
    "a\u2028b",
    "ünï©ødé",
    "\x00",
    "--",
    "-",
    "$(touch PWNED)",
    "'\"",
]
PATHS = ["empty", "fifo", "file", "binary.yaml", "list.yaml", "missing/deeper", "ds", "x" * 300]
URLS = ["s3://", "s3://data", "s3://nobucket/p", "s3://data/../..", "http://x/y", "data/p"]
ENDPOINTS = ["http://127.0.0.1:9", "127.0.0.1:9", "ftp://127.0.0.1:9", "http://[::1"]
VALUES = NUMBERS + TEXT + PATHS + URLS + ENDPOINTS

TINY = "frames: 4\nhorizon: 1\nimage_size: 16\ncameras: {azimuths_deg: [20.0], elevations_deg: [30.0]}\n"

# command -> (base argv that succeeds quickly, index in it of the output it may write, if any)
ENTRY: dict[str, tuple[list[str], int | None]] = {
    "generate": (
        ["--n", "2", "--out", "out", "--workers", "1", "--quiet", "--config", "tiny.yaml"],
        3,
    ),
    "preflight": (["preflight", "--n", "2", "--out", "out", "--config", "tiny.yaml"], None),
    "validate": (["validate", "ds", "--quick"], None),
    "preview": (["preview", "ds", "--index", "0", "--out", "sheet.png"], 5),
    "convert": (["convert", "ds", "conv", "--format", "shards", "--workers", "1", "--quiet"], 2),
    "push": (["push", "ds", "s3://data/p", "--quiet"], None),
    "pull": (["pull", "s3://data/seeded", "got", "--quiet"], 2),
}
DEFAULT_OUT = {"generate": "data/trajectories"}  # where generate writes without --out
SECONDS = 20  # one command line taking longer is a hang


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """Two samples of a one-camera, four-frame, 16-pixel config: made once, copied per test."""
    root = tmp_path_factory.mktemp("fuzz") / "ds"
    (root.parent / "tiny.yaml").write_text(TINY)
    argv = ["--n", "2", "--out", str(root), "--workers", "1", "--quiet"]
    assert main([*argv, "--config", str(root.parent / "tiny.yaml")]) == 0
    return root


@pytest.fixture
def place(in_tmp_path, monkeypatch, tiny_dataset):
    """A scratch working directory holding what the table names, S3 mocked, the network closed."""
    tmp_path = in_tmp_path
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("x")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "tiny.yaml").write_text(TINY)
    shutil.copytree(tiny_dataset, tmp_path / "ds")
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)

    reached: list = []
    real_connect = socket.socket.connect

    def loopback_only(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            reached.append(address)
            raise OSError(errno.ENETUNREACH, "the fuzzer allows loopback only")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    from moto import mock_aws

    with mock_aws():
        from generator.dataformat.remote import push
        from trajkit.s3sync import make_client

        make_client(None).create_bucket(Bucket="data")
        push(tmp_path / "ds", "s3://data/seeded", make_client(None), 5 << 20, quiet=True)
        yield tmp_path
    assert not reached, f"the network was reached: {reached}"


def snapshot(root: Path) -> set[Path]:
    return set(root.rglob("*"))


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


PULL_SIDE_FILES = (".pull-tmp", ".pulled-from")  # trajkit.s3sync's, by design


def check(place: Path, capsys, name: str, argv: list[str]) -> None:
    out_at = ENTRY[name][1]
    before = snapshot(place)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    except Hang:
        code = "hang"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    captured = capsys.readouterr()
    context = f"{name} {argv!r}: {captured.err[-1500:]}"
    assert code in (0, 1, 2, 130), context
    assert "Traceback" not in captured.err, context
    if code == 2:
        assert captured.err.strip() and len(captured.err.strip().splitlines()) == 1, context
    given = argv[out_at] if out_at is not None and out_at < len(argv) else DEFAULT_OUT.get(name)
    if given == "--" and out_at + 1 < len(argv):  # "--" ends the options: the output comes next
        given = argv[out_at + 1]
    out = Path(os.path.abspath(place / given)) if given is not None else None
    for new in snapshot(place) - before:
        inside = out is not None and (new.is_relative_to(out) or out.is_relative_to(new))
        if name == "pull" and out is not None:  # its staging folder and source note, beside it
            beside = [out.with_name(f".{out.name}{suffix}") for suffix in PULL_SIDE_FILES]
            inside = inside or any(new == b or new.is_relative_to(b) for b in beside)
        assert inside, f"{new} written outside the output folder (or its parents): {context}"
    assert not list(place.rglob("PWNED")), context
    # What each run made goes, so the next command line starts from the same tree.
    for new in sorted(snapshot(place) - before, key=lambda p: len(p.parts)):
        if new.is_dir() and not new.is_symlink():
            shutil.rmtree(new, ignore_errors=True)
        elif new.exists() or new.is_symlink():
            new.unlink(missing_ok=True)


def mutations(base: list[str]) -> list[list[str]]:
    """Each non-flag token replaced by each hostile value; plus repeats, unknowns and nothing."""
    argvs = []
    for i, token in enumerate(base):
        if token.startswith("--") or (i == 0 and token in ENTRY):
            continue
        argvs += [[*base[:i], v, *base[i + 1 :]] for v in VALUES]
    argvs += [[*base, *base[-2:]], [*base, "--no-such-flag"], [*base, "--no-such-flag", "x"]]
    argvs += [base[:1] if base[0] in ENTRY else []]
    return argvs


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ENTRY)
def test_hostile_table(place, capsys, name):
    for argv in mutations(ENTRY[name][0]):
        check(place, capsys, name, argv)


@pytest.mark.parametrize("name", ["push", "pull"])
def test_hostile_endpoint_urls(place, capsys, name):
    for value in VALUES:
        check(place, capsys, name, [*ENTRY[name][0], "--endpoint-url", value])


@pytest.mark.parametrize("name", ["push", "pull"])
def test_an_unreachable_endpoint_is_one_line(place, capsys, name):
    """The loopback port nothing listens on: refused at once, one line, exit 2."""
    argv = [*ENTRY[name][0], "--endpoint-url", "http://127.0.0.1:9"]
    check(place, capsys, name, argv)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Could not connect to the endpoint URL" in err and len(err.splitlines()) == 1, err


FLAGS = sorted({t for base, _ in ENTRY.values() for t in base if t.startswith("--")})
FLAGS += ["--seed", "--checkpoint-every", "--resume", "--verify", "--format", "--shard-size"]
FLAGS += ["--zstd-level", "--backend", "--scheduler", "--no-preflight", "--endpoint-url"]
FLAGS += ["--part-size-mb", "--gif"]
TOKENS = st.one_of(
    st.sampled_from(FLAGS + VALUES + ["--no-such-flag", "pt", "shards", "dask"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
)


def _random_command_lines(place, capsys, name, tail):
    argv = [*ENTRY[name][0], *tail]
    for flag in ("-h", "--help"):  # help is exit 0 with several lines: fine, but not fuzzed
        while flag in argv:
            argv.remove(flag)
    check(place, capsys, name, argv)


@pytest.mark.timeout(120)
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(name=st.sampled_from(sorted(ENTRY)), tail=st.lists(TOKENS, max_size=5))
def test_random_command_lines(place, capsys, name, tail):
    """The base argv with random tokens appended: repeats, unknown flags, odd values."""
    _random_command_lines(place, capsys, name, tail)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@settings(
    max_examples=6000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(sorted(ENTRY)), tail=st.lists(TOKENS, max_size=8))
def test_random_command_lines_wide(place, capsys, name, tail):
    """The same, wider and not derandomised: each run explores new command lines."""
    _random_command_lines(place, capsys, name, tail)
