"""push/pull against a real S3 API over HTTP: moto's standalone server on loopback."""

import os
import socket
import time
import urllib.request

import pytest

from generator.s3sync import MB, make_client, pull, push


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on 127.0.0.1 for one test; credentials come through boto3's env chain."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
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
    assert "4 files downloaded and verified" in capsys.readouterr().out
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
    assert not (dest / "results.json").exists()
    assert (dest / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()
    assert not list(dest.rglob(".tmp-*"))


def test_pull_skips_files_already_present(s3, folder, tmp_path):
    _, client = s3
    push(folder, "s3://data/ds", client, quiet=True)
    dest = tmp_path / "copy"
    assert pull("s3://data/ds", dest, client, quiet=True)["downloaded"] == 4
    again = pull("s3://data/ds", dest, client, quiet=True)
    assert again["skipped"] == 4 and again["downloaded"] == 0 and not again["damaged"]


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
    from generator.lock import FolderLock

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
