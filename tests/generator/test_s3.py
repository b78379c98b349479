"""push/pull against a real S3 API over HTTP: moto's standalone server on loopback."""

import base64
import hashlib
import os
import re
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from generator.dataformat.remote import pull, push
from trajkit.s3sync import MB, make_client


class FakeClient:
    """What a stand-in for a boto3 client needs beyond its calls: the timeout its deadlines
    are counted in."""

    meta = SimpleNamespace(config=SimpleNamespace(read_timeout=60))


def fake_credentials(monkeypatch, **extra: str) -> None:
    """Credentials through boto3's env chain, never the machine's own profile."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    for k, v in {**env, "AWS_DEFAULT_REGION": "us-east-1", **extra}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A moto S3 server on 127.0.0.1 for one test; credentials come through boto3's env chain."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    fake_credentials(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # multipart resume state
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: start every test from an empty store.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    client = make_client(endpoint)
    client.create_bucket(Bucket="data")
    yield endpoint, client
    server.stop()


# Requests that create an object (a multipart upload exists only once completed).
WRITES = ("PutObject", "CompleteMultipartUpload")


def record_calls(client) -> list[tuple[str, str | None]]:
    """Every request ``client`` makes from now on, as (operation, key), in order."""
    calls: list[tuple[str, str | None]] = []

    def hook(model, params, **_):
        calls.append((model.name, params.get("Key")))

    client.meta.events.register("before-parameter-build.s3", hook)
    return calls


@pytest.fixture
def folder(tmp_path):
    """A run-folder-like tree: nested files, one big enough for a multipart upload."""
    root = tmp_path / "run"
    (root / "events").mkdir(parents=True)
    (root / "results.json").write_text('{"val_accuracy": 0.5}\n')
    (root / "events" / "a.log").write_bytes(b"x" * 1000)
    (root / "big.bin").write_bytes(bytes(range(256)) * (12 * MB // 256))
    (root / "metadata.json").write_text("{}\n")
    (root / ".lock").write_text("")
    return root


def test_push_multipart_then_pull_verified(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    assert (
        cli("push", folder, "s3://data/runs/r1", "--endpoint-url", endpoint, "--part-size-mb", 5)
        == 0
    )
    assert "4 files uploaded" in capsys.readouterr().out
    head = client.head_object(Bucket="data", Key="runs/r1/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # 12 MB in 5 MB parts
    assert len(head["Metadata"]["sha256"]) == 64
    assert "runs/r1/.lock" not in {
        o["Key"] for o in client.list_objects_v2(Bucket="data")["Contents"]
    }
    # Pushing again sends nothing.
    assert cli("push", folder, "s3://data/runs/r1", "--endpoint-url", endpoint) == 0
    out = capsys.readouterr().out
    assert "0 files uploaded" in out and "4 already there" in out

    dest = tmp_path / "copy"
    assert cli("pull", "s3://data/runs/r1", dest, "--endpoint-url", endpoint) == 0
    assert "4 files downloaded" in capsys.readouterr().out
    for rel in ("results.json", "events/a.log", "big.bin", "metadata.json"):
        assert (dest / rel).read_bytes() == (folder / rel).read_bytes()
    assert not (dest / ".lock").exists()


def test_interrupted_push_resumes_with_what_is_missing(s3, folder, monkeypatch):
    endpoint, client = s3
    real = client.upload_file
    sent = []

    def flaky(*args, **kw):
        if len(sent) == 2:
            raise KeyboardInterrupt  # the connection (or the user) gives up mid-push
        sent.append(args[2])
        return real(*args, **kw)

    monkeypatch.setattr(client, "upload_file", flaky)
    with pytest.raises(KeyboardInterrupt):
        push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    monkeypatch.setattr(client, "upload_file", real)
    calls = record_calls(client)
    stats = push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    # big.bin (multipart) and two small files went up before the interruption
    assert stats["skipped"] == 3 and stats["uploaded"] == 1
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="data", Prefix="ds/")["Contents"])
    assert keys == ["ds/big.bin", "ds/events/a.log", "ds/metadata.json", "ds/results.json"]
    assert "ds/metadata.json" not in sent  # the completion marker never went up early
    assert [k for op, k in calls if op in WRITES] == ["ds/metadata.json"]


def test_metadata_json_is_the_last_object_written(s3, folder):
    """The order of the object-creating requests themselves, not just which files were sent."""
    _, client = s3
    calls = record_calls(client)
    push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    written = [k for op, k in calls if op in WRITES]
    assert sorted(written) == [
        "ds/big.bin",
        "ds/events/a.log",
        "ds/metadata.json",
        "ds/results.json",
    ]
    assert written[-1] == "ds/metadata.json"


def test_damaged_object_is_detected_and_not_written(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    head = client.head_object(Bucket="data", Key="ds/results.json")
    client.put_object(
        Bucket="data",
        Key="ds/results.json",
        Body=b'{"val_accuracy": 0.9}\n',
        Metadata=head["Metadata"],
    )
    dest = tmp_path / "copy"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint) == 1
    err = capsys.readouterr().err
    assert (
        "results.json: SHA-256 of the downloaded bytes differs" in err
        and len(err.splitlines()) == 1
    )
    assert not dest.exists(), "a pull that failed verification put files in place"
    # The verified objects wait in the staging folder for the next run.
    staged = dest.parent / ".copy.pull-tmp"
    assert (staged / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()
    assert not list(staged.rglob(".tmp-*"))


def test_pull_skips_files_already_present(s3, folder, tmp_path):
    _, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "copy"
    assert pull("s3://data/ds", dest, client, quiet=True)["downloaded"] == 4
    again = pull("s3://data/ds", dest, client, quiet=True)
    assert again["skipped"] == 4 and again["downloaded"] == 0 and not again["damaged"]
    assert sum(again["by"].values()) == 4 and min(again["by"].values()) > 0


def test_a_pull_the_disk_cannot_hold_is_refused_before_any_download(
    s3, folder, tmp_path, cli, capsys, monkeypatch
):
    """Before, it downloaded until the disk was full; what is already here whole needs no room."""
    import collections

    import trajkit.s3sync.staging as staging

    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != ".lock")
    free = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(staging.shutil, "disk_usage", lambda path: free(0, 0, total - 1))
    calls = record_calls(client)
    dest = tmp_path / "new" / "copy"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not enough disk space" in err, err
    assert f"{total / 1e6:.1f} MB to download" in err, err
    assert not (tmp_path / "new").exists() and not any(op == "GetObject" for op, _ in calls)
    monkeypatch.setattr(staging.shutil, "disk_usage", lambda path: free(0, 0, total))
    assert pull("s3://data/ds", dest, client, quiet=True)["downloaded"] == 4
    monkeypatch.setattr(staging.shutil, "disk_usage", lambda path: free(0, 0, 0))
    assert (
        pull("s3://data/ds", dest, client, quiet=True)["skipped"] == 4
    )  # all here: no room needed


def test_bad_address_and_missing_bucket_are_one_line(s3, folder, cli, capsys):
    endpoint, _ = s3
    assert cli("push", folder, "data/ds", "--endpoint-url", endpoint) == 2
    assert "s3://bucket/prefix" in capsys.readouterr().err
    assert cli("push", folder, "s3://nobucket/ds", "--endpoint-url", endpoint) == 2
    err = capsys.readouterr().err
    assert "bucket 'nobucket' does not exist" in err
    assert len(err.strip().splitlines()) == 1


def test_a_sharded_dataset_round_trips_and_validates(s3, tmp_path, cli):
    endpoint, _ = s3
    ds = tmp_path / "ds"
    args = ("--n", 6, "--workers", 1, "--format", "shards", "--shard-size", 4, "--quiet")
    assert cli(*args, "--out", ds) == 0
    assert cli("push", ds, "s3://data/datasets/ds", "--endpoint-url", endpoint, "--quiet") == 0
    copy = tmp_path / "copy"
    assert cli("pull", "s3://data/datasets/ds", copy, "--endpoint-url", endpoint, "--quiet") == 0
    assert cli("validate", copy) == 0
    assert sorted(p.name for p in (copy / "shards").iterdir()) == sorted(
        p.name for p in (ds / "shards").iterdir()
    )


def test_push_and_pull_refuse_a_folder_a_generator_is_writing(s3, folder, tmp_path, cli, capsys):
    from trajkit.lock import FolderLock

    endpoint, client = s3
    with FolderLock(folder / ".lock"):  # what a running generator holds
        assert cli("push", folder, "s3://data/ds", "--endpoint-url", endpoint) == 2
        err = capsys.readouterr().err
        assert "is being written by process" in err and len(err.strip().splitlines()) == 1
    assert "Contents" not in client.list_objects_v2(Bucket="data", Prefix="ds/")
    push(folder, "s3://data/ds", client, quiet=True)  # free again: the push goes through

    dest = tmp_path / "pulled"
    dest.mkdir()
    with FolderLock(dest / ".lock"):
        assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint) == 2
        assert "is being written by process" in capsys.readouterr().err
    assert sorted(p.name for p in dest.iterdir()) == [".lock"], "a refused pull wrote files"
    assert pull("s3://data/ds", dest, client, quiet=True)["downloaded"] == 4


def test_interrupted_multipart_upload_resumes_part_by_part(s3, folder, tmp_path, monkeypatch):
    endpoint, client = s3
    big = folder / "big.bin"
    os.utime(big, (time.time() - 60, time.time() - 60))  # written well before the push
    real = client.upload_part
    sent = []

    def flaky(**kw):
        if len(sent) == 2:
            raise KeyboardInterrupt  # the third of big.bin's three 5 MB parts never arrives
        sent.append(kw["PartNumber"])
        return real(**kw)

    monkeypatch.setattr(client, "upload_part", flaky)
    with pytest.raises(KeyboardInterrupt):
        push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    assert len(client.list_multipart_uploads(Bucket="data")["Uploads"]) == 1  # left open

    sent.clear()
    monkeypatch.setattr(
        client, "upload_part", lambda **kw: sent.append(kw["PartNumber"]) or real(**kw)
    )
    stats = push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    assert stats["parts_reused"] == 2 and len(sent) == 1  # only the missing part was sent
    assert "Uploads" not in client.list_multipart_uploads(Bucket="data")
    dest = tmp_path / "copy"
    assert not pull("s3://data/ds", dest, client, quiet=True)["damaged"]
    assert (dest / "big.bin").read_bytes() == big.read_bytes()


def test_an_open_upload_of_a_changed_file_is_not_reused(s3, folder, monkeypatch):
    endpoint, client = s3
    big = folder / "big.bin"
    os.utime(big, (time.time() - 60, time.time() - 60))
    real = client.upload_part

    def fail_second(**kw):
        if kw["PartNumber"] == 2:
            raise KeyboardInterrupt
        return real(**kw)

    monkeypatch.setattr(client, "upload_part", fail_second)
    with pytest.raises(KeyboardInterrupt):
        push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    monkeypatch.setattr(client, "upload_part", real)
    big.write_bytes(b"y" * (11 * MB))  # changed after the upload began
    stats = push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    assert stats["parts_reused"] == 0
    assert client.get_object(Bucket="data", Key="ds/big.bin")["Body"].read() == big.read_bytes()
    assert "Uploads" not in client.list_multipart_uploads(Bucket="data")


# ---------------------------------------------------------------- what verifies an object


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def upload_plain(endpoint: str, root: Path, prefix: str) -> None:
    """Upload ``root`` the way any other tool would: no user metadata, no checksum."""
    import boto3
    from botocore.config import Config

    plain = boto3.client(
        "s3", endpoint_url=endpoint, config=Config(request_checksum_calculation="when_required")
    )
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != ".lock":
            plain.upload_file(str(p), "data", f"{prefix}/{p.relative_to(root).as_posix()}")


def tamper(client, key: str) -> None:
    """Replace an object by bytes of the same length with one byte changed."""
    data = bytearray(client.get_object(Bucket="data", Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    client.put_object(Bucket="data", Key=key, Body=bytes(data))


def test_push_stores_service_sha256_checksums(s3, folder):
    _, client = s3
    push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    small = client.head_object(Bucket="data", Key="ds/results.json", ChecksumMode="ENABLED")
    assert small["ChecksumSHA256"] == b64sha((folder / "results.json").read_bytes())
    assert (
        small["Metadata"]["sha256"]
        == hashlib.sha256((folder / "results.json").read_bytes()).hexdigest()
    )  # kept for pulls by older versions
    big = client.head_object(Bucket="data", Key="ds/big.bin", ChecksumMode="ENABLED")
    data = (folder / "big.bin").read_bytes()
    parts = [data[i : i + 5 * MB] for i in range(0, len(data), 5 * MB)]
    composite = b64sha(b"".join(hashlib.sha256(p).digest() for p in parts))
    assert big["ChecksumSHA256"].split("-")[0] == composite  # a checksum of the parts' checksums


@pytest.mark.parametrize("which", ["small_dataset", "small_shard_dataset"])
def test_a_dataset_uploaded_by_another_tool_pulls_verified_by_its_manifests(
    s3, tmp_path, cli, capsys, request, which
):
    from generator.dataformat.dataset import STATS_FILE
    from generator.dataformat.remote import RECOMPUTED

    endpoint, client = s3
    ds = request.getfixturevalue(which)
    upload_plain(endpoint, ds, "plain")
    # a cache the reader would trust if it parses: without a hash it is left out
    assert RECOMPUTED == {STATS_FILE}
    client.put_object(Bucket="data", Key=f"plain/{STATS_FILE}", Body=b'{"mean": [9]}')
    copy = tmp_path / "copy"
    assert cli("pull", "s3://data/plain", copy, "--endpoint-url", endpoint, "--quiet") == 0
    assert not (copy / STATS_FILE).exists()
    out = capsys.readouterr().out
    data_files = len(list((ds / ("shards" if "shard" in which else "videos")).iterdir()))
    assert f"{data_files * (1 if 'shard' in which else 2)} by the manifests' SHA-256" in out
    assert cli("validate", copy) == 0


def test_a_damaged_object_of_a_plain_upload_fails_and_nothing_is_put_in_place(
    s3, small_shard_dataset, tmp_path, cli, capsys
):
    endpoint, client = s3
    upload_plain(endpoint, small_shard_dataset, "plain")
    shard = sorted(p.name for p in (small_shard_dataset / "shards").iterdir())[1]
    tamper(client, f"plain/shards/{shard}")
    copy = tmp_path / "copy"
    assert cli("pull", "s3://data/plain", copy, "--endpoint-url", endpoint, "--quiet") == 1
    err = capsys.readouterr().err
    assert f"shards/{shard}: SHA-256 of the downloaded bytes differs from its manifest" in err
    assert len(err.splitlines()) == 1
    assert not copy.exists()


def test_an_object_nothing_vouches_for_is_refused(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    client.put_object(Bucket="data", Key="ds/notes.txt", Body=b"hello\n")  # no hash anywhere
    copy = tmp_path / "copy"
    assert cli("pull", "s3://data/ds", copy, "--endpoint-url", endpoint, "--quiet") == 1
    err = capsys.readouterr().err
    assert "notes.txt: nothing to verify it by" in err and len(err.splitlines()) == 1
    assert not copy.exists()


def test_objects_with_only_a_service_checksum_are_verified_by_it(
    s3, folder, tmp_path, cli, capsys, monkeypatch
):
    """Single-part: the full object's SHA-256; multipart: the checksum of the parts' checksums."""
    from boto3.s3.transfer import TransferConfig

    endpoint, client = s3
    upload_plain(endpoint, folder, "svc")  # metadata.json stays so: the reader checks it
    for rel in ("results.json", "events/a.log"):
        client.put_object(
            Bucket="data",
            Key=f"svc/{rel}",
            Body=(folder / rel).read_bytes(),
            ChecksumAlgorithm="SHA256",
        )
    config = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    client.upload_file(
        str(folder / "big.bin"),
        "data",
        "svc/big.bin",
        ExtraArgs={"ChecksumAlgorithm": "SHA256"},
        Config=config,
    )
    head = client.head_object(Bucket="data", Key="svc/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # really multipart
    copy = tmp_path / "copy"
    assert cli("pull", "s3://data/svc", copy, "--endpoint-url", endpoint, "--quiet") == 0
    assert "3 by the SHA-256 checksum S3 holds" in capsys.readouterr().out
    for rel in ("results.json", "events/a.log", "big.bin", "metadata.json"):
        assert (copy / rel).read_bytes() == (folder / rel).read_bytes()

    # Bytes damaged on the way are caught, for a multipart object too.
    real = client.download_file

    def damaging(bucket, key, filename, **kw):
        real(bucket, key, filename, **kw)
        if key == "svc/big.bin":
            with open(filename, "r+b") as f:
                f.seek(7 * MB)
                byte = f.read(1)
                f.seek(7 * MB)
                f.write(bytes([byte[0] ^ 0xFF]))

    monkeypatch.setattr(client, "download_file", damaging)
    again = tmp_path / "again"
    stats = pull("s3://data/svc", again, client, quiet=True)
    assert stats["damaged"] == [
        "big.bin: SHA-256 of the downloaded bytes differs from S3's checksum"
    ]
    assert not again.exists()


def test_a_manifest_already_in_place_still_vouches_for_the_objects_it_lists(s3, tmp_path, cli):
    """A manifest skipped because DIR holds it is read all the same."""
    endpoint, client = s3
    ds = make_dataset(cli, tmp_path / "ds", seed=1)
    push(ds, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    pull("s3://data/ds", dest, client, quiet=True)
    video = "videos/sample_0003.pt"
    client.put_object(Bucket="data", Key=f"ds/{video}", Body=(ds / video).read_bytes())  # no hash
    (dest / video).unlink()
    stats = pull("s3://data/ds", dest, client, quiet=True)
    assert not stats["damaged"] and stats["downloaded"] == 1
    assert stats["by"]["by the manifests' SHA-256"] == 1
    assert cli("validate", dest) == 0


# ---------------------------------------------------------------- requests a push makes


def test_a_repeated_push_lists_once_and_heads_nothing(s3, folder):
    _, client = s3
    push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    calls = record_calls(client)
    stats = push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    assert stats["skipped"] == 4
    assert Counter(op for op, _ in calls) == {"HeadBucket": 1, "ListObjectsV2": 1}

    # A file changed at the same size is found from the listing too and sent again.
    (folder / "results.json").write_text('{"val_accuracy": 0.7}\n')
    calls.clear()
    stats = push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    assert stats["uploaded"] == 1 and stats["skipped"] == 3
    ops = Counter(op for op, _ in calls)
    assert ops["PutObject"] == 1 and ops["ListObjectsV2"] == 1 and ops["HeadObject"] <= 1


def test_push_over_another_uploaders_copy_sends_the_files_again_with_their_hashes(s3, folder):
    """Same bytes but nothing a pull could verify them by: skipping them would strand them."""
    endpoint, client = s3
    upload_plain(endpoint, folder, "ds")
    stats = push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    assert stats["uploaded"] == 4 and stats["skipped"] == 0
    head = client.head_object(Bucket="data", Key="ds/events/a.log", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64sha((folder / "events" / "a.log").read_bytes())


# ---------------------------------------------------------------- atomic pulls


def make_dataset(cli, out: Path, seed: int) -> Path:
    assert cli("--n", 6, "--seed", seed, "--out", out, "--workers", 1, "--quiet") == 0
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_a_pull_killed_over_an_existing_dataset_leaves_it_untouched_and_resumes(
    s3, tmp_path, cli, monkeypatch
):
    _, client = s3
    old = make_dataset(cli, tmp_path / "old", seed=1)
    new = make_dataset(cli, tmp_path / "new", seed=2)
    push(old, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    pull("s3://data/ds", dest, client, quiet=True)
    before = tree(dest)
    push(new, "s3://data/ds", client, quiet=True)  # a newer version under the same prefix

    real = client.download_file
    fetched = []

    def killed(*args, **kw):
        if len(fetched) == 8:  # the manifest, the fingerprint and the 6 labels arrived
            raise KeyboardInterrupt
        fetched.append(args[1])
        return real(*args, **kw)

    monkeypatch.setattr(client, "download_file", killed)
    with pytest.raises(KeyboardInterrupt):
        pull("s3://data/ds", dest, client, quiet=True)
    assert tree(dest) == before, "the old dataset was changed by a pull that did not finish"
    assert cli("validate", dest) == 0

    fetched.clear()
    monkeypatch.setattr(
        client, "download_file", lambda *a, **kw: fetched.append(a[1]) or real(*a, **kw)
    )
    stats = pull("s3://data/ds", dest, client, quiet=True)
    assert not stats["damaged"] and tree(dest) == tree(new)
    # what verified before the kill is kept: the manifest, the fingerprint and the 6 labels
    assert stats["kept"] == 8 and len(fetched) == len(tree(new)) - stats["kept"]
    assert cli("validate", dest) == 0
    assert not (tmp_path / ".dest.pull-tmp").exists()


def test_a_pull_killed_while_moving_into_place_leaves_no_metadata_and_resumes(
    s3, tmp_path, cli, monkeypatch
):
    """The moves are renames, but a kill among them must not leave a mix that looks complete."""
    import trajkit.s3sync.staging as staging

    _, client = s3
    push(make_dataset(cli, tmp_path / "old", seed=1), "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    pull("s3://data/ds", dest, client, quiet=True)
    new = make_dataset(cli, tmp_path / "new", seed=2)
    push(new, "s3://data/ds", client, quiet=True)

    real, moved = os.replace, []

    def killed(src, dst):
        if dest in Path(dst).parents:
            if len(moved) == 4:
                raise KeyboardInterrupt  # the fifth move into dest never happens
            moved.append(dst)
        return real(src, dst)

    monkeypatch.setattr(staging.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        pull("s3://data/ds", dest, client, quiet=True)
    monkeypatch.setattr(staging.os, "replace", real)
    assert not (dest / "metadata.json").exists()  # the folder says it is incomplete
    assert cli("validate", dest) == 1
    stats = pull("s3://data/ds", dest, client, quiet=True)
    assert not stats["damaged"] and tree(dest) == tree(new)
    assert cli("validate", dest) == 0


def test_an_unchanged_metadata_json_is_also_out_of_place_while_files_move(
    s3, folder, tmp_path, monkeypatch
):
    import trajkit.s3sync.staging as staging

    _, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    pull("s3://data/ds", dest, client, quiet=True)
    (folder / "results.json").write_text('{"val_accuracy": 0.8}\n')  # metadata.json unchanged
    push(folder, "s3://data/ds", client, quiet=True)
    real = os.replace

    def killed(src, dst):
        if Path(dst) == dest / "results.json":
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(staging.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        pull("s3://data/ds", dest, client, quiet=True)
    monkeypatch.setattr(staging.os, "replace", real)
    assert not (dest / "metadata.json").exists()
    assert (tmp_path / ".dest.pull-tmp" / "metadata.json").is_file()  # set aside, not lost
    assert not pull("s3://data/ds", dest, client, quiet=True)["damaged"]
    assert tree(dest) == tree(folder)


def test_a_pull_that_fails_verification_writes_no_metadata(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    assert pull("s3://data/ds", dest, client, quiet=True)["downloaded"] == 4
    before = tree(dest)
    (folder / "metadata.json").write_text('{"v": 2}\n')
    (folder / "results.json").write_text('{"val_accuracy": 0.6}\n')
    push(folder, "s3://data/ds", client, quiet=True)
    head = client.head_object(Bucket="data", Key="ds/results.json")
    client.put_object(  # damaged: bytes that are not the ones its SHA-256 metadata describes
        Bucket="data",
        Key="ds/results.json",
        Body=b'{"val_accuracy": 0.9}\n',
        Metadata=head["Metadata"],
    )
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 1
    assert "results.json: SHA-256 of the downloaded bytes differs" in capsys.readouterr().err
    assert tree(dest) == before  # neither the new metadata.json nor anything else moved in
    fresh = tmp_path / "fresh"
    assert cli("pull", "s3://data/ds", fresh, "--endpoint-url", endpoint, "--quiet") == 1
    assert not (fresh / "metadata.json").exists()


def test_pull_refuses_a_folder_that_is_not_an_earlier_pull_of_the_same_place(
    s3, folder, tmp_path, cli, capsys
):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    assert cli("pull", "s3://data/ds", mine, "--endpoint-url", endpoint, "--quiet") == 2
    err = capsys.readouterr().err
    assert "is not empty and is not a pull of s3://data/ds" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # An earlier pull of the same place is updated; of another place, refused.
    dest = tmp_path / "dest"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    push(folder, "s3://data/other", client, quiet=True)
    assert cli("pull", "s3://data/other", dest, "--endpoint-url", endpoint, "--quiet") == 2
    # a name that only its last letter tells apart
    push(folder, "s3://data/dsX", client, quiet=True)
    assert cli("pull", "s3://data/dsX", dest, "--endpoint-url", endpoint, "--quiet") == 2


# ---------------------------------------------------------------- multipart resume


def test_resume_is_not_fooled_by_a_change_with_the_mtime_put_back(
    s3, folder, tmp_path, monkeypatch
):
    _, client = s3
    big = folder / "big.bin"
    os.utime(big, (time.time() - 60, time.time() - 60))
    st = big.stat()
    real = client.upload_part

    def only_first(**kw):
        if kw["PartNumber"] != 1:
            raise KeyboardInterrupt
        return real(**kw)

    monkeypatch.setattr(client, "upload_part", only_first)
    with pytest.raises(KeyboardInterrupt):
        push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    monkeypatch.setattr(client, "upload_part", real)
    with open(big, "r+b") as f:  # the third part, never sent, changes; same size
        f.seek(11 * MB)
        f.write(b"changed")
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the mtime is put back
    assert big.stat().st_mtime_ns == st.st_mtime_ns and big.stat().st_size == st.st_size

    push(folder, "s3://data/ds", client, part_size=5 * MB, quiet=True)
    head = client.head_object(Bucket="data", Key="ds/big.bin")
    assert head["Metadata"]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert client.get_object(Bucket="data", Key="ds/big.bin")["Body"].read() == big.read_bytes()
    assert not pull("s3://data/ds", tmp_path / "copy", client, quiet=True)["damaged"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "url, endpoint, says",
    [
        ("s3://data/a\x00b", None, "control character"),
        ("s3://data/a\nb", None, "control character"),
        ("s3://data/a\x7fb", None, "control character"),
        ("s3://data/../x", None, "'.' or '..'"),
        ("s3://data/a/./b", None, "'.' or '..'"),
        ("s3://data/a/..", None, "'.' or '..'"),
        ("s3://data//x", None, "empty"),
        ("s3://data/a//b", None, "empty"),
        ("s3:///x", None, "s3://bucket/prefix"),
        ("s3://da ta/x", None, "bucket"),
        ("data/x", None, "s3://bucket/prefix"),
        ("s3://data/x", "ftp://127.0.0.1:1", "--endpoint-url"),
        ("s3://data/x", "127.0.0.1:9000", "--endpoint-url"),
        ("s3://data/x", "http://", "--endpoint-url"),
        ("s3://data/x", "http://host:notaport", "--endpoint-url"),
        ("s3://data/x", "http://host/\nx", "control character"),
    ],
)
@pytest.mark.parametrize("command", ["push", "pull"])
def test_hostile_addresses_are_one_line_exit_2(
    s3, folder, tmp_path, cli, capsys, url, endpoint, says, command
):
    real_endpoint, client = s3
    ep = endpoint or real_endpoint
    args = (folder, url) if command == "push" else (url, tmp_path / "dest")
    try:  # a control character is refused by the parser (SystemExit), the rest by push/pull
        code = cli(command, *args, "--endpoint-url", ep, "--quiet")
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert says in err and len(err.splitlines()) == 1, err
    assert "Contents" not in client.list_objects_v2(Bucket="data")
    assert not (tmp_path / "dest").exists()


def test_without_boto3_push_and_pull_say_which_extra_to_install(
    folder, tmp_path, cli, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "boto3", None)  # an import of it now fails
    monkeypatch.setitem(sys.modules, "botocore", None)
    assert cli("push", folder, "s3://data/ds") == 2
    assert cli("pull", "s3://data/ds", tmp_path / "dest") == 2
    msg = "error: push/pull needs boto3: pip install 'trajectory-suite[s3]'\n"
    assert capsys.readouterr().err == msg * 2


def test_the_dataset_knowledge_is_in_its_rules_not_in_the_generic_sync(s3, small_dataset, tmp_path):
    """``trajkit.s3sync`` without rules knows no manifest: a plain upload of a dataset pulls
    only with the dataset format's rules (its manifests vouch for the videos and labels)."""
    from trajkit import s3sync

    endpoint, client = s3
    upload_plain(endpoint, small_dataset, "plain")
    generic = s3sync.pull("s3://data/plain", tmp_path / "generic", client, quiet=True)
    assert generic["damaged"] and not (tmp_path / "generic").exists()
    assert any("videos/" in d and "in no manifest" in d for d in generic["damaged"])
    copy = tmp_path / "dataset"
    stats = pull("s3://data/plain", copy, client, quiet=True)
    assert not stats["damaged"]
    assert stats["by"]["by the manifests' SHA-256"] == 2 * len(
        list((small_dataset / "videos").iterdir())
    )
    assert (copy / "metadata.json").read_bytes() == (small_dataset / "metadata.json").read_bytes()


def test_any_folder_round_trips_with_the_generic_rules(s3, folder, tmp_path):
    """A training run has no file written last: its files simply move into place."""
    from trajkit import s3sync

    _, client = s3
    (folder / ".lock").unlink()
    pushed = s3sync.push(folder, "s3://data/run", client, quiet=True)
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
    assert pushed["uploaded"] == 4 and pushed["bytes"] == sum(sizes)
    stats = s3sync.pull("s3://data/run", tmp_path / "back", client, quiet=True)
    assert not stats["damaged"] and stats["downloaded"] == 4
    for rel in ("results.json", "events/a.log", "big.bin", "metadata.json"):
        assert (tmp_path / "back" / rel).read_bytes() == (folder / rel).read_bytes()


def test_a_file_changed_while_it_is_pushed_leaves_no_object(s3, folder, monkeypatch):
    _, client = s3
    real_upload = client.upload_file

    def upload_then_change(filename, bucket, key, **kw):
        real_upload(filename, bucket, key, **kw)
        if filename.endswith("results.json"):
            with open(filename, "a") as f:
                f.write(" ")

    monkeypatch.setattr(client, "upload_file", upload_then_change)
    from trajkit.s3sync import S3Error

    with pytest.raises(S3Error, match="results.json changed while it was pushed; push again"):
        push(folder, "s3://data/r", client, quiet=True)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="data").get("Contents", [])]
    assert "r/results.json" not in keys


# ------------------------------------------------------------ the command line, exactly


@pytest.mark.parametrize("command", ["push", "pull"])
def test_help_shows_the_address_form(command, cli, capsys):
    with pytest.raises(SystemExit):
        cli(command, "--help")
    out = capsys.readouterr().out
    assert re.search(r"\n  url +s3://bucket/prefix\n", out)
    assert "copy any folder to and from S3." in " ".join(out.split())


def test_help_says_what_the_timeout_bounds(cli, capsys):
    with pytest.raises(SystemExit):
        cli("pull", "--help")
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "seconds a connection may take to open or stay silent (default: 60); an object may "
        "take 5 of them to start, then one a MB" in said
    )


def test_part_size_defaults_to_64_mb_and_under_5_is_refused(folder, monkeypatch, cli, capsys):
    from trajkit.s3sync import command

    seen = {}

    def fake_push(root, url, client, part_size, quiet, rules):
        seen["part_size"] = part_size
        return {"uploaded": 0, "bytes": 0, "skipped": 4, "parts_reused": 0}

    monkeypatch.setattr(command, "push", fake_push)
    monkeypatch.setattr(command, "make_client", lambda url, timeout: None)
    assert cli("push", folder, "s3://data/x") == 0
    assert seen["part_size"] == 64 * MB
    out = capsys.readouterr().out
    assert (
        out
        == f"pushed {folder} to s3://data/x: 0 files uploaded (0.0 MB), 4 already there with the same bytes\n"
    )
    for size in (4, 5121):
        assert cli("push", folder, "s3://data/x", "--part-size-mb", size) == 2
        assert capsys.readouterr().err == (
            "error: --part-size-mb must be 5..5120 (S3's smallest and largest part)\n"
        )


def test_a_service_error_is_one_line_naming_the_command(folder, monkeypatch, cli, capsys):
    from botocore.exceptions import ClientError

    from trajkit.s3sync import command

    def refused(*args, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    monkeypatch.setattr(command, "push", refused)
    monkeypatch.setattr(command, "make_client", lambda url, timeout: None)
    assert cli("push", folder, "s3://data/x") == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: push failed: An error occurred (AccessDenied)")
        and err.count("\n") == 1
    )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000", "https://s3.example.org", "https://s3.example.org:443/"]
)
def test_http_and_https_endpoints_are_accepted(url):
    from trajkit.s3sync import check_endpoint

    check_endpoint(url)  # raises S3Error if refused


def test_head_is_none_only_for_a_missing_object():
    from botocore.exceptions import ClientError

    from trajkit.s3sync.store import head_or_none

    class Client(FakeClient):
        def __init__(self, code):
            self.code = code

        def head_object(self, **kw):
            raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "HeadObject")

    for code in ("404", "NoSuchKey", "NotFound"):
        assert head_or_none(Client(code), "b", "k") is None
    with pytest.raises(ClientError):
        head_or_none(Client("403"), "b", "k")


def test_the_longest_prefix_s3_keys_allow_under_it():
    from trajkit.s3sync import MAX_KEY, S3Error, parse_url

    assert parse_url("s3://data/" + "p" * (MAX_KEY // 2)) == ("data", "p" * (MAX_KEY // 2))
    with pytest.raises(S3Error, match="too long"):
        parse_url("s3://data/" + "p" * (MAX_KEY // 2 + 1))


@pytest.mark.parametrize(
    "error, said",
    [
        ({"Code": "NoSuchBucket"}, "bucket 'b' does not exist"),
        ({"Code": "404"}, "bucket 'b' does not exist"),
        ({"Code": "AccessDenied"}, "bucket 'b' cannot be used (AccessDenied)"),
        ({}, "bucket 'b' cannot be used ()"),
    ],
)
def test_check_bucket_says_missing_or_unusable(error, said):
    from botocore.exceptions import ClientError

    from trajkit.s3sync import S3Error, check_bucket

    class Client(FakeClient):
        def head_bucket(self, Bucket):  # noqa: N803 - boto3's name
            raise ClientError({"Error": error}, "HeadBucket")

    with pytest.raises(S3Error) as caught:
        check_bucket(Client(), "b")
    assert str(caught.value) == said


def test_a_request_past_its_deadline_is_one_line_naming_it():
    """What a user reads when the store trickles: in-process here, where the hostile store's
    tests see it only through a command's stderr."""
    from trajkit.s3_multipart import S3Error
    from trajkit.s3sync.store import answered, transferred

    client = SimpleNamespace(meta=SimpleNamespace(config=SimpleNamespace(read_timeout=0.01)))
    done = threading.Event()
    try:
        with pytest.raises(S3Error) as late:
            answered(client, done.wait, "s3://b/k")
        assert str(late.value) == (
            "s3://b/k got no answer within 0 s (5 times --timeout): the store is too slow"
        )
        with pytest.raises(S3Error) as late:
            transferred(client, done.wait, 0, "s3://b/k")
        assert str(late.value) == (
            "s3://b/k was not transferred within 0 s (5 times --timeout to start, then "
            "--timeout a MB): the store is too slow"
        )
    finally:
        done.set()


def test_a_bucket_check_answered_without_an_error_record_is_one_line():
    from botocore.exceptions import ClientError

    from trajkit.s3sync import S3Error, check_bucket

    class Client(FakeClient):
        def head_bucket(self, Bucket):  # noqa: N803 - boto3's name
            raise ClientError({}, "HeadBucket")

    with pytest.raises(S3Error, match=r"^bucket 'b' cannot be used \(\)$"):
        check_bucket(Client(), "b")


def test_a_listing_entry_outside_the_prefix_is_refused():
    """A store answering with keys of another prefix: a pull would write them under DIR."""
    from trajkit.s3_multipart import S3Error
    from trajkit.s3sync.store import listing

    class Client(FakeClient):
        def get_paginator(self, operation):
            pages = [{"Contents": [{"Key": "elsewhere/x", "Size": 1}]}]
            return SimpleNamespace(paginate=lambda **params: iter(pages))

    with pytest.raises(S3Error, match="an entry without a key under it"):
        listing(Client(), "b", "ds")


def test_a_checksum_with_a_character_out_of_base64_is_no_sha256(tmp_path):
    """A decoder that skipped the stray character read a valid SHA-256 out of it."""
    from trajkit.s3sync import verify

    digest = base64.b64encode(hashlib.sha256(b"x").digest()).decode()

    class Client(FakeClient):
        def head_object(self, **kw):
            return {"ChecksumSHA256": digest[:4] + "!" + digest[4:], "ETag": '"e"'}

    with pytest.raises(verify.Unverified, match="is not a SHA-256"):
        verify.check_for(Client(), "b", "k", "f", {})


def test_push_and_pull_at_the_top_of_a_bucket(s3, folder, tmp_path):
    """An address without a prefix: the objects' keys are the files' own paths."""
    _, client = s3
    push(folder, "s3://data", client, quiet=True)
    pull("s3://data", tmp_path / "dest", client, quiet=True)
    assert tree(tmp_path / "dest") == tree(folder)


@pytest.mark.parametrize(
    "kind, etag, composite",
    [("COMPOSITE", '"abc"', True), ("FULL_OBJECT", '"abc-3"', False), (None, '"abc-3"', True)],
)
def test_the_checksum_type_decides_how_an_object_is_verified(
    kind, etag, composite, tmp_path, monkeypatch
):
    from trajkit.s3sync import verify

    data = b"the object's bytes"
    (tmp_path / "f").write_bytes(data)
    head = {
        "ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "ETag": etag,
    }
    if kind:
        head["ChecksumType"] = kind

    class Client(FakeClient):
        def head_object(self, **kw):
            return head

    monkeypatch.setattr(verify, "_composite_test", lambda *a: lambda path: True)
    check = verify.check_for(Client(), "b", "k", "f", {})
    if composite:  # a checksum of the parts' checksums: recomputed from the parts
        assert check.sha256 == [] and check.composite is not None
    else:  # the whole object's SHA-256
        assert check.sha256 == [(verify.BY_CHECKSUM, hashlib.sha256(data).hexdigest())]
        assert check.composite is None
    assert check.passes(tmp_path / "f") == verify.BY_CHECKSUM


def test_folder_markers_are_passed_over_not_the_end(s3, folder, tmp_path):
    from trajkit import s3sync

    _, client = s3
    (folder / ".lock").unlink()
    s3sync.push(folder, "s3://data/run", client, quiet=True)
    client.put_object(Bucket="data", Key="run/events/", Body=b"")  # sorts before events/a.log
    stats = s3sync.pull("s3://data/run", tmp_path / "back", client, quiet=True)
    assert not stats["damaged"] and stats["downloaded"] == 4
    assert (tmp_path / "back" / "events" / "a.log").read_bytes() == b"x" * 1000


def test_manifests_are_read_before_the_files_they_vouch_for(s3, tmp_path):
    """A manifest that sorts last still vouches for a file with no hash of its own."""
    import re

    from trajkit import s3sync

    endpoint, client = s3
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.bin").write_bytes(b"payload")
    (root / "z.sha").write_text(hashlib.sha256(b"payload").hexdigest())
    upload_plain(endpoint, root, "plain")

    def hashes_in(path):
        return {"a.bin": path.read_text()}

    manifest = re.compile(r"z\.sha")
    rules = s3sync.FolderRules(manifests=manifest, hashes_in=hashes_in, self_checked=manifest)
    stats = s3sync.pull("s3://data/plain", tmp_path / "back", client, quiet=True, rules=rules)
    assert not stats["damaged"], stats["damaged"]
    assert (tmp_path / "back" / "a.bin").read_bytes() == b"payload"


def test_a_local_error_is_one_line_on_stderr(folder, monkeypatch, cli, capsys):
    import errno

    from trajkit.s3sync import command

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "DIR/videos/x.pt")

    monkeypatch.setattr(command, "push", full)
    monkeypatch.setattr(command, "pull", full)
    monkeypatch.setattr(command, "make_client", lambda url, timeout: None)
    assert cli("push", folder, "s3://data/x") == 1  # not bad input: the generator's exit 1
    out, err = capsys.readouterr()
    assert out == "" and err == "error: push failed: No space left on device: DIR/videos/x.pt\n"
    assert cli("pull", "s3://data/x", folder / "new") == 1
    assert capsys.readouterr().err == (
        "error: pull failed: No space left on device: DIR/videos/x.pt; "
        "what arrived whole is kept for the next run\n"
    )


@pytest.fixture
def silent_endpoint():
    """An endpoint that accepts connections and never answers (a hung proxy or store)."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("command", ["push", "pull"])
def test_a_silent_endpoint_fails_after_timeout_in_one_line(
    command, folder, tmp_path, silent_endpoint, monkeypatch, cli, capsys
):
    """boto3 waits 60 s per try by default; --timeout bounds the wait, and the error says so."""
    fake_credentials(monkeypatch, AWS_MAX_ATTEMPTS="2")
    places = [folder, "s3://data/x"] if command == "push" else ["s3://data/x", tmp_path / "new"]
    args = [command, *places, "--endpoint-url", silent_endpoint, "--timeout", "0.5"]
    assert cli(*args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {command} failed: Read timeout on endpoint URL")
    assert err.endswith("(no answer within 0.5 s on each try; --timeout sets the wait)\n")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "86401", "1e308"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(value, folder, cli, capsys):
    """1e308 s was a traceback from urllib3's clock; a day is the longest wait taken."""
    assert cli("push", folder, "s3://data/x", "--timeout", value) == 2
    assert capsys.readouterr().err == (
        f"error: --timeout must be a positive number of seconds up to 86400, got {float(value):g}\n"
    )


# ---------------------------------------------------------------- what mutation testing asked for


def test_a_key_too_long_with_its_prefix_is_refused_before_any_upload(s3, tmp_path):
    """S3's 1,024 bytes hold the prefix too: a name that fits alone may not fit under it."""
    from trajkit import s3sync

    _, client = s3
    rel = "/".join(["d" * 200] * 3) + "/f"  # 604 bytes, a key of its own
    (tmp_path / "src" / rel).parent.mkdir(parents=True)
    (tmp_path / "src" / rel).write_text("x")
    calls = record_calls(client)
    with pytest.raises(s3sync.S3Error, match="its key would be longer than S3's 1024 bytes"):
        s3sync.push(tmp_path / "src", "s3://data/" + "p" * 500, client, quiet=True)
    assert not any(op in WRITES for op, _ in calls)


def test_a_file_the_store_does_not_take_in_time_is_named(s3, tmp_path, monkeypatch):
    import threading

    from trajkit import s3sync
    from trajkit.s3sync import store

    _, client = s3
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("x")
    released = threading.Event()
    monkeypatch.setattr(client, "upload_file", lambda *args, **kw: released.wait(10))
    monkeypatch.setattr(store, "allowed_seconds", lambda client, size: 0.1)
    try:
        with pytest.raises(s3sync.S3Error, match=r"^s3://data/run/a\.txt was not transferred"):
            s3sync.push(tmp_path / "src", "s3://data/run", client, quiet=True)
    finally:
        released.set()


def test_a_pull_into_a_file_is_refused(s3, folder, tmp_path, cli, capsys):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    dest.write_text("a file\n")
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint) == 2
    assert capsys.readouterr().err == f"error: {dest} is not a folder\n"
    assert dest.read_text() == "a file\n"


def test_a_pull_from_another_endpoint_into_an_earlier_pull_is_refused(
    s3, folder, tmp_path, cli, capsys
):
    endpoint, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "dest"
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", endpoint, "--quiet") == 0
    other = endpoint.replace("127.0.0.1", "localhost")  # the same server, another address
    assert cli("pull", "s3://data/ds", dest, "--endpoint-url", other, "--quiet") == 2
    assert capsys.readouterr().err == (
        f"error: {dest} is a pull of s3://data/ds from {endpoint}, not from {other}; "
        "pull into a new or empty folder\n"
    )


def test_an_endpoint_is_recorded_the_same_however_it_is_spelt():
    from trajkit.s3sync.download import _endpoint

    for spelt in ("HTTPS://S3.Example.org/base/", "https://s3.example.org/base"):
        assert _endpoint(spelt) == "https://s3.example.org/base"
    assert _endpoint(None) is None


def test_a_composite_checksum_is_recomputed_without_its_part_count(monkeypatch):
    """S3 writes a checksum of the parts' checksums as '<base64>-<parts>'."""
    from trajkit.s3sync import verify

    asked = []

    def composite_test(client, bucket, key, checksum, parts):
        asked.append((checksum, parts))
        return lambda path: True

    class Client(FakeClient):
        def head_object(self, **kw):
            return {"ChecksumSHA256": "AAAA-3", "ETag": '"abc-3"'}

    monkeypatch.setattr(verify, "_composite_test", composite_test)
    assert verify.check_for(Client(), "b", "k", "f", {}).composite is not None
    assert asked == [("AAAA", 3)]
