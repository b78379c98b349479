"""push/pull against what a hostile tester found: clashing names, a staging folder that is not
ours, stores that trickle or never end a listing, mixed prefixes, mount points, names a pull
could not write back. moto on loopback (``test_s3``'s fixtures), and for what moto never does
a hand-written store on loopback whose behaviour the bucket name picks."""

# ruff: noqa: F811 - test_s3's fixtures, imported, are the tests' arguments

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import trajkit.s3sync.download
import trajkit.s3sync.staging
from generator.dataformat.remote import pull, push
from tests.generator.conftest import ROOT
from tests.generator.test_s3 import (  # noqa: F401 - fixtures
    fake_credentials,
    folder,
    make_dataset,
    s3,
    tree,
)
from trajkit.s3sync import MB


def one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def pulled(s3, folder, tmp_path, cli) -> Path:
    """``folder`` pushed to s3://data/ds and pulled into a new folder, which is returned."""
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    return dest


def put_pushed(client, key: str, body: bytes, sha256: str | None = None) -> None:
    """An object as push sends it: sha256 metadata (the body's, unless given) and checksum."""
    client.put_object(
        Bucket="data",
        Key=key,
        Body=body,
        Metadata={"sha256": sha256 or hashlib.sha256(body).hexdigest()},
        ChecksumAlgorithm="SHA256",
    )


# ---------------------------------------------------------------- F1 file/folder clashes


def test_a_key_that_is_both_a_file_and_a_folder_leaves_dir_as_it_was(
    s3, folder, tmp_path, cli, capsys
):
    """Before, the pull failed among the moves, with metadata.json already out of DIR, for ever."""
    endpoint, client = s3
    dest = pulled(s3, folder, tmp_path, cli)
    before = tree(dest)
    put_pushed(client, "ds/events", b"iamafile")  # 'events' is a folder too (events/a.log)
    capsys.readouterr()
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 1
    err = one_error_line(capsys)
    assert "s3://data/ds/events is both a file and a folder" in err and str(dest) in err
    assert ".pull-tmp" not in err and "run it again" not in err
    assert tree(dest) == before


@pytest.mark.parametrize("damage", ["folder where a file goes", "file where a folder goes"])
def test_a_dir_whose_file_is_a_folder_or_the_reverse_is_refused_before_anything_moves(
    s3, folder, tmp_path, cli, capsys, damage
):
    endpoint, client = s3
    dest = pulled(s3, folder, tmp_path, cli)
    if damage == "folder where a file goes":
        (dest / "results.json").unlink()
        (dest / "results.json" / "junk").mkdir(parents=True)
        in_the_way, said = dest / "results.json", "is a folder"
    else:
        (dest / "events" / "a.log").unlink()
        (dest / "events").rmdir()
        (dest / "events").write_text("a file\n")
        in_the_way, said = dest / "events", "is not a folder"
    before = tree(dest)
    capsys.readouterr()
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 2
    err = one_error_line(capsys)
    assert f"{in_the_way} {said}; move it away and pull again" in err, err
    assert ".pull-tmp" not in err
    assert tree(dest) == before and (dest / "metadata.json").is_file()
    assert not (tmp_path / ".dest.pull-tmp").exists()


def test_a_staging_leftover_in_the_way_is_cleared(s3, folder, tmp_path, cli):
    """What an earlier run staged as a folder, now a file's place, is ours to remove."""
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    leftover = tmp_path / ".dest.pull-tmp" / "results.json" / "old"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("from a run of another listing\n")
    (tmp_path / ".dest.pull-tmp" / ".lock").write_text("")
    dest = tmp_path / "dest"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    assert (dest / "results.json").read_bytes() == (folder / "results.json").read_bytes()


# ---------------------------------------------------------------- F9 the staging folder


def test_a_staging_path_that_is_a_link_is_refused_and_never_followed(
    s3, folder, tmp_path, cli, capsys
):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / ".tmp-important").write_text("keep\n")
    (tmp_path / ".dest.pull-tmp").symlink_to(victim)
    capsys.readouterr()
    assert cli("pull", "s3://data/ds", tmp_path / "dest", "--endpoint-url", endpoint) == 2
    err = one_error_line(capsys)
    assert "is in the way and is not a pull's staging folder" in err
    assert sorted(p.name for p in victim.iterdir()) == [".tmp-important"]
    assert not (tmp_path / "dest").exists() and (tmp_path / ".dest.pull-tmp").is_symlink()


@pytest.mark.parametrize("kind", ["a folder without our lock", "a file", "a link inside"])
def test_a_staging_path_that_is_not_ours_is_refused(s3, folder, tmp_path, cli, capsys, kind):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    staging = tmp_path / ".dest.pull-tmp"
    if kind == "a file":
        staging.write_text("someone's\n")
    else:
        staging.mkdir()
        (staging / "notes.tmp").write_text("someone's\n")
        if kind == "a link inside":
            (staging / ".lock").write_text("")
            (tmp_path / "elsewhere").mkdir()
            (staging / "events").symlink_to(tmp_path / "elsewhere")
    capsys.readouterr()
    assert cli("pull", "s3://data/ds", tmp_path / "dest", "--endpoint-url", endpoint) == 2
    assert "is not a pull's staging folder" in one_error_line(capsys)
    assert not (tmp_path / "dest").exists()
    if kind != "a file":
        assert (staging / "notes.tmp").read_text() == "someone's\n"
        assert not (tmp_path / "elsewhere" / "a.log").exists()


# ---------------------------------------------------------------- a hand-written store

LISTED_SIZE = 64 << 10


class Store(BaseHTTPRequestHandler):
    """S3 as a hostile store answers it; the bucket name picks the misbehaviour:

    drip: every body (a GET's, a PUT's answer) one byte at a time; driplist: the listing
    so; driphead: a HEAD's headers so (a bucket's once ``?head=bucket``, else an object's); endless: every listing page truncated, with a new token; nosize / badsize: a listing
    entry without a size or with 'abc'; badchecksum: results.json's checksum is not base64."""

    protocol_version = "HTTP/1.1"
    dripping = threading.Event()
    stopping = threading.Event()
    pages = 0
    drip_bucket_head = False

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drip(self, headers: dict, length: int) -> None:
        self.send_response(200)
        for name, value in {"Content-Length": str(length), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        Store.dripping.set()
        for _ in range(length):
            if Store.stopping.wait(0.2):
                return
            self.wfile.write(b"x")
            self.wfile.flush()

    def _where(self) -> tuple[str, str, str]:
        """(bucket, key, query) of a path-style request."""
        parts = urlsplit(self.path)
        bucket, _, key = parts.path.lstrip("/").partition("/")
        return bucket, key, parts.query

    def _drip_headers(self) -> None:
        """A header a byte at a time: the answer is never silent, and never ends."""
        self.send_response(200)
        self.flush_headers()
        Store.dripping.set()
        for byte in b"x-amz-meta-pad: " + b"x" * LISTED_SIZE:
            if Store.stopping.wait(0.2):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def do_HEAD(self) -> None:
        bucket, key, _ = self._where()
        if bucket == "driphead" and (bool(key) or Store.drip_bucket_head):
            return self._drip_headers()
        if not key:
            return self._send(200)
        if bucket == "badchecksum" and key.endswith("results.json"):
            return self._send(200, b"", {"x-amz-checksum-sha256": "!!!not base64!!"})
        size = 2 if bucket == "badchecksum" else LISTED_SIZE
        self._send(200, b"", {"Content-Length": str(size), "ETag": '"e"'})

    def do_GET(self) -> None:
        bucket, key, query = self._where()
        if "list-type=2" in query:
            return self._list(bucket, query)
        if bucket == "drip":
            return self._drip({"ETag": '"e"'}, LISTED_SIZE)
        self._send(200, b"{}", {"ETag": '"e"'})

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self._where()[0] == "drip":
            return self._drip({}, LISTED_SIZE)  # a store that never finishes answering
        self._send(200, b"", {"ETag": '"e"'})

    def _list(self, bucket: str, query: str) -> None:
        if bucket == "driplist":
            return self._drip({"Content-Type": "application/xml"}, LISTED_SIZE)
        Store.pages += 1
        if Store.pages > 500:  # the test's own bound: a pull without one would list for ever
            return self._send(500)
        size = {"nosize": "", "badsize": "<Size>abc</Size>"}.get(
            bucket, f"<Size>{2 if bucket == 'badchecksum' else LISTED_SIZE}</Size>"
        )
        keys = ["p/metadata.json"] + (["p/results.json"] if bucket == "badchecksum" else [])
        if bucket == "endless":
            keys = [f"p/k{Store.pages}"]
        more = (
            f"<IsTruncated>true</IsTruncated><NextContinuationToken>t{Store.pages}"
            "</NextContinuationToken>"
            if bucket == "endless"
            else "<IsTruncated>false</IsTruncated>"
        )
        contents = "".join(
            f'<Contents><Key>{k}</Key>{size}<ETag>"e"</ETag></Contents>' for k in keys
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
            f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{bucket}</Name>{more}'
            f"{contents}</ListBucketResult>"
        ).encode()
        self._send(200, body, {"Content-Type": "application/xml"})


@pytest.fixture
def store(monkeypatch):
    """The hostile store's endpoint on 127.0.0.1."""
    fake_credentials(monkeypatch, AWS_MAX_ATTEMPTS="1")
    Store.dripping.clear()
    Store.stopping.clear()
    Store.pages = 0
    Store.drip_bucket_head = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), Store)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Store.stopping.set()
    server.shutdown()
    server.server_close()


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "generator", *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ---------------------------------------------------------------- F2 a store that trickles


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["pull", "push"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_one_stop_ends_a_transfer_from_a_store_that_trickles(
    store, folder, tmp_path, command, stop
):
    """Before, the first two stops were swallowed: boto3 waited for its worker's read."""
    (folder / "big.bin").unlink()
    places = ["s3://drip/p", tmp_path / "dest"] if command == "pull" else [folder, "s3://drip/p"]
    proc = start(command, *places, "--endpoint-url", store, "--timeout", "30")
    try:
        assert Store.dripping.wait(30), proc.communicate()
        time.sleep(0.5)  # well inside the worker's read
        proc.send_signal(stop)
        stopped = time.monotonic()
        out, err = proc.communicate(timeout=15)
        assert time.monotonic() - stopped < 5
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.startswith("interrupted: "), err
    assert len(err.splitlines()) == 1, err


@pytest.mark.timeout(60)
def test_a_store_that_trickles_fails_the_transfer_at_its_deadline(store, tmp_path):
    """A byte every 0.2 s is never silent for --timeout; at least a MB a --timeout is asked."""
    began = time.monotonic()
    proc = start(
        "pull", "s3://drip/p", tmp_path / "dest", "--endpoint-url", store, "--timeout", 0.5
    )
    try:
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and "s3://drip/p/metadata.json was not transferred" in err
    assert "--timeout a MB" in err and time.monotonic() - began < 30
    assert not (tmp_path / "dest").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["pull", "push"])
def test_a_store_that_trickles_its_listing_fails_at_the_deadline(store, folder, tmp_path, command):
    """The listing ran in the main thread without a deadline: a byte every 0.2 s held the
    command for ever."""
    err, seconds = refused_by_a_trickling_store(command, "driplist", folder, tmp_path, store)
    assert "the listing of s3://driplist/p/ sent no page within" in err, err
    assert seconds < 30 and not (tmp_path / "dest").exists()


def refused_by_a_trickling_store(
    command: str, bucket: str, folder: Path, tmp_path: Path, store: str
) -> tuple[str, float]:
    """``command`` between ``folder`` (or ``tmp_path/dest``) and ``s3://bucket/p`` at a 0.5 s
    --timeout: its one error line, exit 2, and the seconds it took."""
    address = f"s3://{bucket}/p"
    places = [address, tmp_path / "dest"] if command == "pull" else [folder, address]
    began = time.monotonic()
    proc = start(command, *places, "--endpoint-url", store, "--timeout", 0.5)
    try:
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    return err, time.monotonic() - began


@pytest.mark.timeout(60)
@pytest.mark.parametrize("asked", ["the bucket", "an object"])
@pytest.mark.parametrize("command", ["pull", "push"])
def test_a_store_that_trickles_a_heads_headers_fails_at_the_deadline(
    store, folder, tmp_path, command, asked
):
    """A HEAD (the bucket's check, an object's checksums before a push or a pull) had no
    deadline: a header a byte every 0.2 s held the command for ever."""
    Store.drip_bucket_head = asked == "the bucket"
    (folder / "big.bin").unlink()
    if command == "push":  # the size listed, so that the push asks for the object's checksum
        pad = LISTED_SIZE - len('{"pad": ""}')
        (folder / "metadata.json").write_text(json.dumps({"pad": "x" * pad}))
    err, seconds = refused_by_a_trickling_store(command, "driphead", folder, tmp_path, store)
    assert "got no answer within" in err and "the store is too slow" in err, err
    assert Store.dripping.is_set() and seconds < 30
    assert not (tmp_path / "dest").exists()


# ---------------------------------------------------------------- F3, F7 listings


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["pull", "push"])
def test_a_listing_that_never_ends_is_one_line(
    store, folder, tmp_path, cli, capsys, monkeypatch, command
):
    from trajkit import s3_multipart

    monkeypatch.setattr(s3_multipart, "LISTING_PAGES", 20, raising=False)
    places = (
        ["s3://endless/p", tmp_path / "dest"] if command == "pull" else [folder, "s3://endless/p"]
    )
    assert cli(command, *places, "--endpoint-url", store, "--quiet") == 2
    err = one_error_line(capsys)
    assert "the listing of s3://endless/p/ did not end after 20 pages" in err
    assert Store.pages == 21 and not (tmp_path / "dest").exists()


@pytest.mark.parametrize("bucket", ["nosize", "badsize"])
@pytest.mark.parametrize("command", ["pull", "push"])
def test_a_listing_entry_without_a_usable_size_is_one_line(
    store, folder, tmp_path, cli, capsys, bucket, command
):
    places = (
        [f"s3://{bucket}/p", tmp_path / "dest"]
        if command == "pull"
        else [folder, f"s3://{bucket}/p"]
    )
    assert cli(command, *places, "--endpoint-url", store, "--quiet") == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: the listing of s3://{bucket}/p/ "), err
    assert not (tmp_path / "dest").exists()


def test_a_checksum_that_is_not_base64_fails_verification_in_one_line(store, tmp_path, cli, capsys):
    dest = tmp_path / "dest"
    assert cli("pull", "s3://badchecksum/p", dest, "--endpoint-url", store, "--quiet") == 1
    err = one_error_line(capsys)
    assert "results.json: S3's checksum '!!!not base64!!' is not a SHA-256" in err
    assert not dest.exists()


# ---------------------------------------------------------------- F4 a prefix not whole


def test_a_prefix_without_its_last_file_is_refused_and_dir_left_as_it_was(
    s3, folder, tmp_path, cli, capsys
):
    """A push cut before metadata.json: before, the pull said 'verified' and exited 0."""
    endpoint, client = s3
    dest = pulled(s3, folder, tmp_path, cli)
    before = tree(dest)
    client.delete_object(Bucket="data", Key="ds/metadata.json")
    capsys.readouterr()
    for where in (dest, tmp_path / "fresh"):
        assert cli("pull", "s3://data/ds", where, "--endpoint-url", endpoint, "--quiet") == 1
        err = one_error_line(capsys)
        assert "s3://data/ds has no metadata.json, the file its writer writes last" in err
    assert tree(dest) == before and not (tmp_path / "fresh").exists()


# ---------------------------------------------------------------- F5 hashes that disagree


def test_sha256_metadata_that_contradicts_the_checksum_fails(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    put_pushed(client, "ds/results.json", b'{"val_accuracy": 0.9}\n', sha256="0" * 64)
    assert cli("pull", "s3://data/ds", tmp_path / "dest", "--endpoint-url", endpoint) == 1
    err = one_error_line(capsys)
    assert "results.json: SHA-256 of the downloaded bytes differs from its sha256 metadata" in err
    assert not (tmp_path / "dest").exists()


def test_a_file_its_manifest_contradicts_fails_though_its_own_hashes_hold(
    s3, tmp_path, cli, capsys
):
    """Two datasets pushed to one prefix at once: every object carries its own true hashes."""
    endpoint, client = s3
    one = make_dataset(cli, tmp_path / "one", seed=1)
    two = make_dataset(cli, tmp_path / "two", seed=2)
    push(one, "s3://data/mix", client, quiet=True)
    video = "videos/sample_0002.pt"
    put_pushed(client, f"mix/{video}", (two / video).read_bytes())
    assert cli("pull", "s3://data/mix", tmp_path / "dest", "--endpoint-url", endpoint) == 1
    err = one_error_line(capsys)
    assert f"{video}: SHA-256 of the downloaded bytes differs from its manifest" in err
    assert not (tmp_path / "dest").exists()


def test_a_smaller_dataset_pushed_over_a_larger_one_is_named_and_not_pulled_as_verified(
    s3, tmp_path, cli, capsys
):
    """The stale manifest of samples 0-3 contradicts the new one of samples 0-2."""
    endpoint, client = s3
    large, small = tmp_path / "large", tmp_path / "small"
    for out, n, seed in ((large, 6, 1), (small, 3, 2)):
        args = ("--n", n, "--seed", seed, "--checkpoint-every", 4, "--workers", 1, "--quiet")
        assert cli(*args, "--out", out) == 0
    push(large, "s3://data/ds", client, quiet=True)
    capsys.readouterr()
    assert cli("push", small, "s3://data/ds", "--endpoint-url", endpoint, "--quiet") == 0
    out, err = capsys.readouterr()
    stale = len(set(tree(large)) - set(tree(small)))
    assert err == (
        f"warning: {stale} object(s) under s3://data/ds are not in {small} (an earlier "
        "push?), e.g. ds/checkpoints/checkpoint_4.json; they stay there, and a pull gets "
        "them too\n"
    )
    assert cli("pull", "s3://data/ds", tmp_path / "dest", "--endpoint-url", endpoint) == 1
    err = one_error_line(capsys)
    assert "differs from its manifests, which disagree (two datasets under one prefix?)" in err
    assert not (tmp_path / "dest").exists()


# ---------------------------------------------------------------- F6 DIR a mount point


def test_a_pull_into_another_filesystem_than_its_staging_folder_copies_across(
    s3, folder, tmp_path, cli, monkeypatch
):
    """A rename from the staging folder (on the parent's filesystem) into a mount point fails
    with EXDEV; before, every pull into a mount point failed after downloading everything."""
    endpoint, client = s3
    dest = pulled(s3, folder, tmp_path, cli)
    (folder / "results.json").write_text('{"val_accuracy": 0.7}\n')
    (folder / "metadata.json").write_text('{"v": 2}\n')
    push(folder, "s3://data/ds", client, quiet=True)
    real, staging = os.replace, tmp_path / ".dest.pull-tmp"

    def across(src, dst):
        sides = {Path(src).is_relative_to(staging), Path(dst).is_relative_to(staging)}
        if sides == {True, False}:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        return real(src, dst)

    monkeypatch.setattr(trajkit.s3sync.staging.os, "replace", across)
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    assert tree(dest) == tree(folder) and not staging.exists()
    assert not list(dest.rglob(".tmp-*"))


def test_the_space_check_measures_dirs_own_filesystem(
    s3, folder, tmp_path, cli, capsys, monkeypatch
):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "mount"
    dest.mkdir()  # an empty mount point: its free space is its own filesystem's
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(
        trajkit.s3sync.staging.shutil,
        "disk_usage",
        lambda p: usage(0, 0, 1000 if Path(p) == dest else 1 << 40),
    )
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 1
    err = one_error_line(capsys)
    assert f"not enough disk space for s3://data/ds in {dest}:" in err and "0.0 MB free" in err
    assert list(dest.iterdir()) == []


# ---------------------------------------------------------------- F7 tracebacks


def test_a_manifest_nested_too_deep_vouches_for_nothing(s3, folder, tmp_path, cli, capsys):
    """Before, a RecursionError traceback: the size bound lets 70 KB of '[' through."""
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    client.put_object(Bucket="data", Key="ds/checkpoints/checkpoint_1.json", Body=b"[" * 50_000)
    dest = tmp_path / "dest"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    assert (dest / "checkpoints" / "checkpoint_1.json").stat().st_size == 50_000


@pytest.mark.parametrize(
    "endpoint", ["http://a_b:45123", "http://-x-/", "http://.x/", "http://x..y/", "http://%00/"]
)
def test_an_endpoint_botocore_refuses_is_one_line(endpoint, tmp_path, cli, capsys):
    assert cli("pull", "s3://data/ds", tmp_path / "dest", "--endpoint-url", endpoint) == 2
    assert "--endpoint-url must look like http(s)://host[:port]" in one_error_line(capsys)


@pytest.mark.parametrize("path", ["/../", "/other", "/base/"])
def test_an_endpoint_with_a_path_is_one_line(path, folder, cli, capsys):
    """The README says host[:port]: "/../" was uploaded to, and "/other" said the bucket
    did not exist."""
    endpoint = f"http://127.0.0.1:9{path}"
    assert cli("push", folder, "s3://data/ds", "--endpoint-url", endpoint) == 2
    assert f"--endpoint-url must look like http(s)://host[:port], got {endpoint!r}" in (
        one_error_line(capsys)
    )


def test_a_name_that_is_not_utf8_is_refused_before_any_upload(s3, folder, cli, capsys):
    endpoint, client = s3
    with open(os.path.join(os.fsencode(folder), b"bad\xff"), "wb") as f:
        f.write(b"x")
    assert cli("push", folder, "s3://data/ds", "--endpoint-url", endpoint) == 2
    assert "a name that is not UTF-8 cannot be an S3 key" in one_error_line(capsys)
    assert "Contents" not in client.list_objects_v2(Bucket="data")


# ---------------------------------------------------------------- F8, F10 names and links


def test_the_longest_file_name_round_trips(s3, folder, tmp_path, cli):
    """Before, the pull's temporary name (the name and more) was too long for the disk."""
    endpoint, client = s3
    name = "n" * 250
    (folder / name).write_bytes(b"long")
    dest = pulled(s3, folder, tmp_path, cli)
    assert (dest / name).read_bytes() == b"long"


def test_a_name_a_pull_could_not_write_is_refused_before_any_upload(s3, folder, cli, capsys):
    endpoint, client = s3
    (folder / "new\nline").write_text("x")
    assert cli("push", folder, "s3://data/ds", "--endpoint-url", endpoint) == 2
    err = one_error_line(capsys)
    assert "new\\nline" in err and "a name with a control character" in err
    assert "Contents" not in client.list_objects_v2(Bucket="data")


def test_push_and_pull_leave_out_the_same_names(s3, folder, tmp_path, cli):
    """The lock at the top and temporaries anywhere; a lock-named file further down is data."""
    endpoint, client = s3
    (folder / "events" / ".lock").write_text("data\n")
    (folder / "events" / ".tmp-half").write_text("half\n")
    push(folder, "s3://data/ds", client, quiet=True)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="data")["Contents"]}
    assert (
        "ds/events/.lock" in keys and "ds/.lock" not in keys and "ds/events/.tmp-half" not in keys
    )
    put_pushed(client, "ds/v/.tmp-bar", b"half")
    dest = tmp_path / "dest"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    assert (dest / "events" / ".lock").read_text() == "data\n"
    assert not (dest / "v").exists()


def test_a_folder_marker_with_bytes_is_refused(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    put_pushed(client, "ds/events/", b"not empty")
    assert cli("pull", "s3://data/ds", tmp_path / "dest", "--endpoint-url", endpoint) == 1
    assert "'events/': a name that cannot be a file" in one_error_line(capsys)


def test_push_names_what_it_leaves_out_and_links_out_of_the_folder(
    s3, folder, tmp_path, cli, capsys
):
    endpoint, client = s3
    secret = tmp_path / "secret.txt"
    secret.write_text("outside\n")
    (folder / "link_out").symlink_to(secret)
    (folder / "dirlink").symlink_to(tmp_path)
    (folder / "dangling").symlink_to(tmp_path / "nothing")
    os.mkfifo(folder / "fifo")
    assert cli("push", folder, "s3://data/ds", "--endpoint-url", endpoint, "--quiet") == 0
    out, err = capsys.readouterr()
    assert err == (
        "warning: 4 not pushed as plain files: dangling left out (a link to nothing); "
        "dirlink left out (a link to a folder); fifo left out (not a regular file); "
        f"link_out is a link out of {folder}: the file it points to is pushed\n"
    )
    body = client.get_object(Bucket="data", Key="ds/link_out")["Body"].read()
    assert body == b"outside\n"


# ---------------------------------------------------------------- F11 messages


def test_a_download_of_another_size_than_listed_says_so(s3, folder, tmp_path, monkeypatch):
    _, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    real = client.download_file

    def longer(bucket, key, filename, **kw):
        real(bucket, key, filename, **kw)
        if key == "ds/results.json":
            with open(filename, "ab") as f:
                f.write(b"more")

    monkeypatch.setattr(client, "download_file", longer)
    stats = pull("s3://data/ds", tmp_path / "dest", client, quiet=True)
    size = (folder / "results.json").stat().st_size
    assert stats["damaged"] == [f"results.json: {size + 4} bytes arrived, the listing says {size}"]


def test_the_same_endpoint_spelt_otherwise_is_the_same_place(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    dest = pulled(s3, folder, tmp_path, cli)
    for spelt in (endpoint + "/", endpoint.replace("http://", "HTTP://")):
        assert cli("pull", "s3://data/ds", dest, "--endpoint-url", spelt, "--quiet") == 0, (
            capsys.readouterr().err
        )


def test_a_pull_into_a_link_to_nothing_is_refused_without_a_trace(
    s3, folder, tmp_path, cli, capsys
):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    (tmp_path / "dest").symlink_to(tmp_path / "nowhere")
    assert cli("pull", "s3://data/ds", tmp_path / "dest", "--endpoint-url", endpoint) == 2
    assert "is a link to nothing" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".dest")) == []


def test_a_pull_marker_nested_too_deeply_is_not_a_trace(s3, folder, tmp_path, cli, capsys):
    """The marker beside DIR is read like any damaged JSON: DIR is then no earlier pull."""
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    marker = tmp_path / ".dest.pulled-from"
    marker.write_text("[" * 200_000 + "]" * 200_000)
    before = tree(dest)
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 2
    assert "is not empty and is not a pull of s3://data/ds" in one_error_line(capsys)
    assert tree(dest) == before


# ---------------------------------------------------------------- F12 races and leftovers


def test_a_pull_that_finished_into_dir_before_the_lock_is_not_mixed_in(
    s3, folder, tmp_path, cli, capsys, monkeypatch
):
    """Another pull, of another prefix, ends into DIR between this one's check and its lock."""
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "metadata.json").write_text('{"other": 1}\n')
    push(other, "s3://data/kp", client, quiet=True)
    dest = tmp_path / "dest"
    real = trajkit.s3sync.download.check_staging

    def then_the_other_pull(*args):
        real(*args)
        monkeypatch.setattr(trajkit.s3sync.download, "check_staging", real)
        pull("s3://data/kp", dest, client, quiet=True)

    monkeypatch.setattr(trajkit.s3sync.download, "check_staging", then_the_other_pull)
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 2
    assert "is not empty and is not a pull of s3://data/ds" in one_error_line(capsys)
    assert tree(dest) == tree(other)
    assert json.loads((tmp_path / ".dest.pulled-from").read_text())["source"] == "s3://data/kp"


def test_a_resume_record_a_stop_left_after_completing_goes_on_the_next_push(s3, folder):
    from trajkit.s3_multipart import ResumeRecord

    _, client = s3
    push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    record = ResumeRecord(client, "data", "ds/big.bin")
    record.path.write_text(json.dumps({"upload_id": "stopped after completing"}))
    assert push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)["skipped"] == 4
    assert not record.path.exists()
