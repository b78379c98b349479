"""The real download path against a loopback HTTP server serving tiny archives."""

import contextlib
import errno
import hashlib
import http.server
import io
import os
import socket
import ssl
import tarfile
import threading
import time
import urllib.error
from pathlib import Path

import pytest
from torchvision import datasets as tvd

from train.jepa import download
from train.jepa.datasets import imagenet100_classes
from trajkit.lock import FolderLock


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []
    honour_range = True
    cut_after: int | None = None  # send this many bytes of the body, then stall or hang up
    stall_seconds = 0.0
    resume_from: int | None = None  # answer a Range request from this byte, whatever it asked
    refuse_head = False  # 405 to HEAD: the size comes only with the download
    drip_after: int | None = None  # send this many bytes at once, then one byte every 0.05 s
    sized = True  # False: no Content-Length, the body ends when the connection closes
    # "chunked" or "close": a GET body without end, its HEAD saying 10 bytes
    endless: str | None = None
    redirects: dict = {}  # file name -> the Location its answer sends to

    def _send(self, body: bool) -> None:
        if (target := self.redirects.get(self.path.lstrip("/"))) is not None:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.endless:
            self._send_without_end(body)
            return
        data = self.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        header = self.headers.get("Range")
        self.log.append((self.command, self.path, header))
        if header and self.honour_range:
            start = int(header.split("=")[1].split("-")[0])
            if self.resume_from is not None:
                start = self.resume_from
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if self.sized:
            self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if body and self.drip_after is not None:
            self.wfile.write(data[start : start + self.drip_after])
            try:
                for i in range(start + self.drip_after, len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass  # the client gave up
        elif body and self.cut_after is not None:
            self.wfile.write(data[start : start + self.cut_after])
            self.wfile.flush()
            time.sleep(self.stall_seconds)
            self.close_connection = True
        elif body:
            self.wfile.write(data[start:])

    def _send_without_end(self, body: bool) -> None:
        """Zeros for ever, chunked or until the client hangs up; a Range request is answered
        from the byte it asks for, with a Content-Range that claims a 200,000-byte file."""
        header = self.headers.get("Range")
        chunked = self.endless == "chunked"
        if chunked:
            self.protocol_version = "HTTP/1.1"
            self.close_connection = True
        if header and body:
            start = int(header.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-199999/200000")
        else:
            self.send_response(200)
        if not body:
            self.send_header("Content-Length", "10")
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = bytes(1 << 16)
        with contextlib.suppress(OSError):  # the client gave up
            while body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)

    def do_GET(self):  # noqa: N802
        self._send(True)

    def do_HEAD(self):  # noqa: N802
        if self.refuse_head:
            self.send_error(405)
            return
        self._send(False)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RangeHandler.files, _RangeHandler.log, _RangeHandler.honour_range = {}, [], True
    _RangeHandler.cut_after, _RangeHandler.stall_seconds = None, 0.0
    _RangeHandler.resume_from, _RangeHandler.refuse_head = None, False
    _RangeHandler.drip_after, _RangeHandler.sized, _RangeHandler.endless = None, True, None
    _RangeHandler.redirects = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _RangeHandler
    httpd.shutdown()
    httpd.server_close()


def _serve_cifar(tmp_path, monkeypatch, jepa_files, handler, vouched: bool = True):
    """A small CIFAR-10 archive on the test server, its MD5 the one expected (``vouched``)
    or torchvision's real one, which it does not match."""
    src = tmp_path / "src"
    md5s = jepa_files.write_cifar(src, "cifar10")
    archive = jepa_files.tar_gz(src / "cifar-10-batches-py", "cifar-10-batches-py")
    handler.files[tvd.CIFAR10.filename] = archive
    jepa_files.patch_md5s(monkeypatch, "cifar10", md5s)
    if vouched:
        monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
    return archive


def test_cifar_download_good_checksum(tmp_path, monkeypatch, jepa_files, server, capsys):
    url, handler = server
    _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    data = tmp_path / "data"
    assert download.main(["cifar10", "--data-path", str(data), "--base-url", url, "--quiet"]) == 0
    assert (data / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
    assert not (data / "cifar10" / tvd.CIFAR10.filename).exists()  # archive removed after use
    assert any(cmd == "GET" for cmd, _, _ in handler.log)
    assert "ready" in capsys.readouterr().out
    # a second run finds the data verified and downloads nothing
    handler.log.clear()
    assert download.main(["cifar10", "--data-path", str(data), "--base-url", url, "--quiet"]) == 0
    assert handler.log == []


def test_bad_checksum_is_rejected_and_removed(tmp_path, monkeypatch, jepa_files, server, capsys):
    url, handler = server
    _serve_cifar(tmp_path, monkeypatch, jepa_files, handler, vouched=False)  # no match
    data = tmp_path / "data"
    code = download.main(["cifar10", "--data-path", str(data), "--base-url", url, "--quiet"])
    assert code == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert not data.exists()  # the archive removed, and the folders made for it


def test_partial_download_resumes_with_range(tmp_path, monkeypatch, jepa_files, server):
    url, handler = server
    src = tmp_path / "src"
    md5s = jepa_files.write_stl10(src)
    archive = jepa_files.tar_gz(src / "stl10_binary", "stl10_binary")
    handler.files[tvd.STL10.filename] = archive
    jepa_files.patch_md5s(monkeypatch, "stl10", md5s)
    monkeypatch.setattr(tvd.STL10, "tgz_md5", hashlib.md5(archive).hexdigest())
    folder = tmp_path / "data" / "stl10"
    folder.mkdir(parents=True)
    half = len(archive) // 2
    (folder / (tvd.STL10.filename + ".part")).write_bytes(archive[:half])
    assert (
        download.main(
            ["stl10", "--data-path", str(tmp_path / "data"), "--base-url", url, "--quiet"]
        )
        == 0
    )
    assert ("GET", "/" + tvd.STL10.filename, f"bytes={half}-") in handler.log
    assert (folder / "stl10_binary" / "unlabeled_X.bin").is_file()


def test_fetch_resume_restart_and_complete_part(tmp_path, server):
    url, handler = server
    handler.files["f.bin"] = b"0123456789"
    handler.files["g.bin"] = b"abcdef"
    (tmp_path / "f.bin.part").write_bytes(b"XXXX")
    download.fetch(f"{url}/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == b"XXXX456789"  # 206: appended to the part
    (tmp_path / "g.bin.part").write_bytes(b"abcdef")
    download.fetch(f"{url}/g.bin", tmp_path / "g.bin")  # 416: the part was already complete
    assert (tmp_path / "g.bin").read_bytes() == b"abcdef"
    handler.honour_range = False  # a server without Range support answers 200: start over
    (tmp_path / "h.bin.part").write_bytes(b"XXXX")
    download.fetch(f"{url}/f.bin", tmp_path / "h.bin")
    assert (tmp_path / "h.bin").read_bytes() == b"0123456789"


def test_disk_preflight_refuses(tmp_path, monkeypatch, server):
    url, handler = server
    handler.files["big.tar.gz"] = b"x" * 1000
    archive = download.Archive(f"{url}/big.tar.gz", "big.tar.gz", "0" * 32, 1.0)
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: type("U", (), {"free": 1500})())
    with pytest.raises(download.DownloadError, match="not enough disk space"):
        download.preflight(tmp_path, archive, have=0, quiet=True)
    download.preflight(tmp_path, archive, have=900, quiet=True)  # 100 + 1000 bytes, x1.1: fits


def test_a_size_only_the_download_gives_is_checked_for_room(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    """With HEAD refused, nothing compared the download's size with the free space: a
    download the disk could not hold started and filled it."""
    url, handler = server
    archive = _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    handler.refuse_head = True
    free = type("Usage", (), {"free": len(archive) // 2})()
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: free)
    data = tmp_path / "data"
    assert download.main(["cifar10", "--data-path", str(data), "--base-url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: not enough disk space in {data / 'cifar10'}"), err
    assert not (data / "cifar10" / (tvd.CIFAR10.filename + ".part")).exists()


def test_imagenet_prints_steps_and_verifies_structure(tmp_path, capsys):
    root = Path(tmp_path) / "imagenet"
    assert download.main(["imagenet100", "--data-path", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "ILSVRC2012_img_train.tar" in err and "not ready" in err
    for split in ("train", "val"):
        for wnid in imagenet100_classes():
            (root / split / wnid).mkdir(parents=True)
            (root / split / wnid / "a.JPEG").write_bytes(b"\xff\xd8")  # not empty
    assert download.main(["imagenet100", "--data-path", str(tmp_path)]) == 0
    assert download.main(["imagenet", "--data-path", str(tmp_path)]) == 1  # 100 of 1000 classes
    assert "expected 1000" in capsys.readouterr().err


def test_unknown_name_is_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        download.main(["mnist", "--data-path", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'mnist'" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("cut", ["connection closed", "stalled", "disk full"])
def test_a_download_cut_short_keeps_its_part_and_resumes(tmp_path, server, monkeypatch, cut):
    """A server that hangs up or goes silent mid-body, or a disk that fills: one error line,
    the bytes received kept in the .part, and the next run asks for the rest only."""
    url, handler = server
    body = bytes(range(256)) * 400
    handler.files["f.bin"] = body
    dest = tmp_path / "f.bin"
    with monkeypatch.context() as m:
        if cut == "disk full":
            real_open = open

            def filling(path, mode="r", **kwargs):
                f = real_open(path, mode, **kwargs)
                if Path(path).name == "f.bin.part":
                    write = f.write
                    m.setattr(f, "write", lambda b: _full_after(f, write, b, 30_000), raising=False)
                return f

            m.setattr("builtins.open", filling)
        else:
            handler.cut_after = 30_000
            handler.stall_seconds = 3.0 if cut == "stalled" else 0.0
            m.setattr(download, "TIMEOUT_SECONDS", 0.5)
        with pytest.raises(download.DownloadError) as e:
            download.fetch(f"{url}/f.bin", dest)
    message = str(e.value)
    assert "\n" not in message and "run the same command again to resume" in message
    assert "after 30000" in message, message
    assert (tmp_path / "f.bin.part").read_bytes() == body[:30_000] and not dest.exists()
    handler.cut_after = None
    download.fetch(f"{url}/f.bin", dest)
    assert dest.read_bytes() == body and ("GET", "/f.bin", "bytes=30000-") in handler.log


@pytest.mark.timeout(60)  # before the fix it dripped for an hour
def test_a_server_that_drips_bytes_is_given_up_and_resumed(tmp_path, server, monkeypatch):
    """A byte every 0.05 s is never silent for the timeout: before, the download went on for
    ever (a 170 MB archive at 20 B/s: three months). Now under MIN_BYTES_PER_SECOND for a
    whole timeout it stops in one line, keeps what arrived, and the next run resumes."""
    url, handler = server
    body = bytes(range(256)) * 400
    handler.files["f.bin"] = body
    handler.drip_after = 30_000
    dest = tmp_path / "f.bin"
    monkeypatch.setattr(download, "TIMEOUT_SECONDS", 0.5)
    start = time.monotonic()
    with pytest.raises(download.DownloadError) as e:
        download.fetch(f"{url}/f.bin", dest)
    assert time.monotonic() - start < 10
    message = str(e.value)
    assert "\n" not in message and "under 1024 a second" in message, message
    assert "run the same command again to resume" in message
    kept = (tmp_path / "f.bin.part").read_bytes()
    assert 30_000 <= len(kept) < len(body) and body.startswith(kept) and not dest.exists()
    handler.drip_after = None
    download.fetch(f"{url}/f.bin", dest)
    assert dest.read_bytes() == body and ("GET", "/f.bin", f"bytes={len(kept)}-") in handler.log


def _full_after(f, write, block, limit: int) -> int:
    """``write`` as a disk with ``limit`` bytes free: a short write, then ENOSPC."""
    room = limit - f.tell()
    if room <= 0:
        raise OSError(errno.ENOSPC, "No space left on device")
    return write(bytes(block[:room]))


def test_a_stopped_download_is_one_line_exit_130(tmp_path, monkeypatch, capsys):
    """Ctrl-C (or SIGTERM) mid-transfer: before, a traceback; the .part stays for the next run."""

    def stopped(url, dest, quiet=True, room=None, size=None):
        (dest.parent / (dest.name + ".part")).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "fetch", stopped)
    code = download.main(["cifar10", "--data-path", str(tmp_path), "--base-url", "http://x"])
    err = capsys.readouterr().err.strip()
    assert code == 130 and len(err.splitlines()) == 1 and ".part" in err, err
    assert (tmp_path / "cifar10" / "cifar-10-python.tar.gz.part").read_bytes() == b"half"


_WRONG_ANSWERS = {
    "hangs up": b"",  # RemoteDisconnected
    "not HTTP": b"SSH-2.0-OpenSSH_9.6\r\n",  # BadStatusLine
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nbody",  # int() fails
    "header too long": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",  # LineTooLong
    "silent": None,  # TimeoutError
}


@pytest.fixture
def wrong_server():
    """A loopback server that reads each request and answers it as ``state["answer"]`` says
    (None: never), then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    state, done, held = {"answer": b""}, threading.Event(), []

    def serve():
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request and (chunk := conn.recv(4096)):
                request += chunk
            if state["answer"] is None:
                held.append(conn)  # silent: open, nothing sent
                continue
            with contextlib.suppress(OSError), conn:
                conn.sendall(state["answer"])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", state
    done.set()
    thread.join()
    listener.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("answer", list(_WRONG_ANSWERS))
def test_a_server_that_answers_wrongly_is_one_line_and_keeps_the_part(
    tmp_path, monkeypatch, capsys, wrong_server, answer
):
    """Before, a 27-59-line traceback (RemoteDisconnected, BadStatusLine, ValueError,
    LineTooLong, TimeoutError after 30 s), from the HEAD of the size estimate or the GET."""
    url, state = wrong_server
    state["answer"] = _WRONG_ANSWERS[answer]
    monkeypatch.setattr(download, "TIMEOUT_SECONDS", 0.5)
    part = tmp_path / "cifar10" / (tvd.CIFAR10.filename + ".part")
    part.parent.mkdir()
    part.write_bytes(b"what arrived before")
    # the whole command: CIFAR-10's size is known, so no HEAD; the GET meets it
    code = download.main(["cifar10", "--data-path", str(tmp_path), "--base-url", url])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: download of {url}/{tvd.CIFAR10.filename} failed"), err
    # the GET of a resumed download
    with pytest.raises(download.DownloadError) as e:
        download.fetch(f"{url}/{tvd.CIFAR10.filename}", part.with_suffix(""))
    assert "\n" not in str(e.value) and f"download of {url}/" in str(e.value), e.value
    assert part.read_bytes() == b"what arrived before"


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _cifar_args(data, url) -> list:
    return ["cifar10", "--data-path", str(data), "--base-url", url, "--quiet"]


@pytest.mark.parametrize("kind", ["a file", "a FIFO", "a link loop", "under a file"])
def test_a_data_path_that_cannot_hold_a_folder_is_one_line_exit_2(tmp_path, capsys, kind):
    """Before, NotADirectoryError, FileNotFoundError or ELOOP as a 28-46-line traceback."""
    where = tmp_path / "d"
    if kind == "a file":
        where.write_bytes(b"mine")
    elif kind == "a FIFO":
        os.mkfifo(where)
    elif kind == "a link loop":
        (tmp_path / "loop2").symlink_to(where)
        where.symlink_to(tmp_path / "loop2")
    else:
        (tmp_path / "f").write_bytes(b"mine")
        where = tmp_path / "f" / "d"
    code = download.main(["cifar10", "--data-path", str(where), "--base-url", "http://x"])
    err = _err_line(capsys)
    assert code == 2 and err.startswith(f"error: cannot create {where / 'cifar10'}: "), err
    if kind in ("a file", "under a file"):
        assert (tmp_path / ("d" if kind == "a file" else "f")).read_bytes() == b"mine"


@pytest.mark.parametrize("url", ["mirror/dir", "127.0.0.1:8000", "ftp://host/x", "http://h:ab/"])
@pytest.mark.parametrize("source", ["--base-url", "environment"])
def test_a_base_url_that_is_no_http_url_is_bad_input(tmp_path, monkeypatch, capsys, url, source):
    """Before, "mirror/dir" was a 39-line ValueError traceback, "127.0.0.1:8000" one line
    advising to run the same command again, which cannot help."""
    argv = ["cifar10", "--data-path", str(tmp_path)]
    if source == "environment":
        monkeypatch.setenv(download.BASE_URL_ENV, url)
    else:
        argv += ["--base-url", url]
    with pytest.raises(SystemExit) as exit_:
        download.main(argv)
    err = _err_line(capsys)
    named = "--base-url" if source == "--base-url" else download.BASE_URL_ENV
    assert exit_.value.code == 2 and f"{named} must be an http(s) URL" in err, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "failure",
    [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
    ],
    ids=["no such name", "no name server"],
)
def test_a_host_that_does_not_resolve_says_so_and_how_to_place_the_archive_by_hand(
    tmp_path, monkeypatch, capsys, failure
):
    """Offline it said "check the URL" of torchvision's own URL. The name lookup is made to
    fail here, so that neither a network nor a resolver that answers for .invalid changes it."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "nonexistent.invalid":
            raise failure
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert download.main(_cifar_args(tmp_path, "http://nonexistent.invalid/")) == 1
    err = _err_line(capsys)
    archive = download.archive_for("cifar10")
    assert "the host nonexistent.invalid could not be resolved" in err, err
    assert "no network here" in err and "nothing can be downloaded" in err, err
    dest = tmp_path / "cifar10" / archive.filename
    assert f"copy {archive.filename} (MD5 {archive.md5}) to {dest} and run" in err, err
    assert "check the URL" not in err and not any(tmp_path.iterdir())


def test_other_failures_of_the_server_are_advised_as_before():
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert "run the same command again" in str(download.server_failure("http://h/a", refused))
    wrong = urllib.error.URLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert "check the URL" in str(download.server_failure("https://h/a", wrong))


def _member(name: str, data: bytes = b"", **fields) -> tuple:  # noqa: ANN003
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, io.BytesIO(data)


def _serve_archive(monkeypatch, handler, members) -> bytes:
    """Serve a tar.gz of ``members`` as CIFAR-10's archive, with its MD5 accepted."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, data)
    body = buf.getvalue()
    handler.files[tvd.CIFAR10.filename] = body
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(body).hexdigest())
    return body


_GOOD = ("cifar-10-batches-py/batches.meta", b"meta")
_REFUSED = {
    "outside": _member("cifar-10-batches-py/../../../evil", b"x"),
    "absolute link": _member("cifar-10-batches-py/l", type=tarfile.SYMTYPE, linkname="/tmp/evil"),
    "link outside": _member("cifar-10-batches-py/up", type=tarfile.SYMTYPE, linkname="../../.."),
    "FIFO": _member("cifar-10-batches-py/fifo", type=tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("refused", [*_REFUSED, "truncated"])
def test_an_archive_that_does_not_unpack_is_one_line_and_leaves_nothing_half_unpacked(
    tmp_path, monkeypatch, server, capsys, refused
):
    """Before, OutsideDestinationError, AbsoluteLinkError, LinkOutsideDestinationError,
    SpecialFileError or EOFError as a traceback, with the members before it left unpacked."""
    url, handler = server
    members = [_member(*_GOOD)] + ([_REFUSED[refused]] if refused in _REFUSED else [])
    body = _serve_archive(monkeypatch, handler, members + [_member(*_GOOD)])
    if refused == "truncated":
        body = body[: len(body) // 2]
        handler.files[tvd.CIFAR10.filename] = body
        monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(body).hexdigest())
    data = tmp_path / "data"
    assert download.main(_cifar_args(data, url)) == 1
    archive = data / "cifar10" / tvd.CIFAR10.filename
    err = _err_line(capsys)
    assert err.startswith(f"error: cannot unpack {archive}: ") and "delete it" in err, err
    assert [p.name for p in (data / "cifar10").iterdir()] == [archive.name]  # kept, alone
    assert not any(p.name == "evil" for p in tmp_path.rglob("*"))


def _failing_copy(monkeypatch, error: BaseException, after: int) -> None:
    """tarfile's file copy, failing with ``error`` on its file number ``after`` + 1."""
    real, calls = tarfile.copyfileobj, []

    def copy(*args, **kwargs):  # noqa: ANN002, ANN003
        calls.append(1)
        if len(calls) > after:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(tarfile, "copyfileobj", copy)


def test_a_disk_that_fills_while_unpacking_is_one_line_and_keeps_the_archive(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    url, handler = server
    _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    data = tmp_path / "data"
    with monkeypatch.context() as m:
        _failing_copy(m, OSError(errno.ENOSPC, "No space left on device"), after=3)
        assert download.main(_cifar_args(data, url)) == 1
    err = _err_line(capsys)
    kept = data / "cifar10" / tvd.CIFAR10.filename
    assert err.startswith(f"error: cannot unpack {kept}: No space left on device"), err
    assert "run the same command again" in err and "delete" not in err, err
    assert [p.name for p in (data / "cifar10").iterdir()] == [kept.name]
    handler.log.clear()
    assert download.main(_cifar_args(data, url)) == 0  # unpacks the kept archive
    assert handler.log == []


def test_a_stop_while_unpacking_says_so_and_the_next_run_unpacks_again(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    """Before: "what arrived is kept in the .part file" (there was none), and the files
    unpacked so far stayed; a truncated file torchvision does not check then passed for data."""
    url, handler = server
    _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    data = tmp_path / "data"
    folder = data / "cifar10"
    with monkeypatch.context() as m:
        _failing_copy(m, KeyboardInterrupt(), after=3)
        assert download.main(_cifar_args(data, url)) == 130
    err = _err_line(capsys)
    assert "while unpacking" in err and ".part" not in err, err
    assert [p.name for p in folder.iterdir()] == [tvd.CIFAR10.filename]
    (folder / ".tmp-unpack" / "cifar-10-batches-py").mkdir(parents=True)  # as a kill -9 leaves
    (folder / ".tmp-unpack" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"cut")
    handler.log.clear()
    assert download.main(_cifar_args(data, url)) == 0
    assert handler.log == [] and not (folder / ".tmp-unpack").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-batches-py"]


def test_a_leftover_archive_beside_verified_data_is_said(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    url, handler = server
    _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    data = tmp_path / "data"
    assert download.main([*_cifar_args(data, url), "--keep-archive"]) == 0
    kept = data / "cifar10" / tvd.CIFAR10.filename
    assert kept.is_file()
    capsys.readouterr()
    assert download.main([*_cifar_args(data, url), "--keep-archive"]) == 0
    assert capsys.readouterr().err == ""  # kept on purpose: nothing to say
    (data / "cifar10" / ".tmp-unpack" / "x").mkdir(parents=True)  # as a kill -9 leaves
    assert download.main(_cifar_args(data, url)) == 0  # as after a stop before its removal
    assert f"note: {kept} is left from an earlier run" in _err_line(capsys)
    assert kept.is_file() and not (data / "cifar10" / ".tmp-unpack").exists()


def test_an_archive_that_unpacks_but_does_not_load_says_to_delete_it(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    """Before, the line advised running the same command again: the kept archive was
    unpacked again with no request, and failed the same way each time."""
    url, handler = server
    _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    (tmp_path / "src" / "cifar-10-batches-py" / "data_batch_3").unlink()
    body = jepa_files.tar_gz(tmp_path / "src" / "cifar-10-batches-py", "cifar-10-batches-py")
    handler.files[tvd.CIFAR10.filename] = body
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(body).hexdigest())
    data = tmp_path / "data"
    assert download.main(_cifar_args(data, url)) == 1
    err = _err_line(capsys)
    kept = data / "cifar10" / tvd.CIFAR10.filename
    assert f"unpacked from {kept} but does not load" in err and "delete it" in err, err
    assert "train.jepa.download" not in err and kept.is_file(), err


def test_a_second_download_into_the_folder_is_refused(tmp_path, monkeypatch, server, capsys):
    """Before, both wrote one .part file, and the later one crashed on its rename."""
    url, handler = server
    handler.files[tvd.CIFAR10.filename] = b"x" * 100
    folder = tmp_path / "cifar10"
    folder.mkdir()
    part = folder / (tvd.CIFAR10.filename + ".part")
    part.write_bytes(b"first")
    with FolderLock(folder / ".download.lock"):
        assert download.main(_cifar_args(tmp_path, url)) == 2
    err = _err_line(capsys)
    assert err.startswith("error: another download is running: ") and str(os.getpid()) in err
    assert part.read_bytes() == b"first" and handler.log == []


def test_stl10_whose_unchecked_class_names_do_not_decode_is_unpacked_again(
    tmp_path, monkeypatch, jepa_files, server
):
    """torchvision reads class_names.txt without an MD5 check; a damaged one was a
    UnicodeDecodeError traceback on every run: the download never reached the archive that
    replaces it."""
    url, handler = server
    src = tmp_path / "src"
    jepa_files.patch_md5s(monkeypatch, "stl10", jepa_files.write_stl10(src))
    archive = jepa_files.tar_gz(src / "stl10_binary", "stl10_binary")
    handler.files[tvd.STL10.filename] = archive
    monkeypatch.setattr(tvd.STL10, "tgz_md5", hashlib.md5(archive).hexdigest())
    argv = ["stl10", "--data-path", str(tmp_path / "data"), "--base-url", url, "--quiet"]
    assert download.main(argv) == 0
    names = tmp_path / "data" / "stl10" / "stl10_binary" / "class_names.txt"
    good = names.read_bytes()
    names.write_bytes(b"airplane\n\xff\xfe bird\n")
    assert download.main(argv) == 0
    assert names.read_bytes() == good


def _imagenet(root, bad_class_content) -> str:
    """An ImageNet-100 tree whose first train class holds ``bad_class_content``: that class."""
    classes = imagenet100_classes()
    for split in ("train", "val"):
        for wnid in classes:
            (root / split / wnid).mkdir(parents=True)
            if split == "val" or wnid != classes[0]:
                (root / split / wnid / "a.JPEG").write_bytes(b"\xff\xd8")
    bad_class_content(root / "train" / classes[0])
    return classes[0]


@pytest.mark.parametrize(
    "content",
    [
        lambda d: (d / "README.txt").write_text("images go here"),
        lambda d: (d / "sub").mkdir(),
        lambda d: (d / "a.JPEG").write_bytes(b""),
        lambda d: (d / "a.JPEG").symlink_to(d / "gone.JPEG"),
        lambda d: os.mkfifo(d / "a.JPEG"),
    ],
    ids=["README only", "sub-folder only", "0 bytes", "dangling link", "FIFO"],
)
def test_imagenet_class_folders_without_an_image_file_are_not_ready(tmp_path, capsys, content):
    """Before, any entry made a class folder count: "ready", then training found no image."""
    wnid = _imagenet(tmp_path / "imagenet", content)
    assert download.main(["imagenet100", "--data-path", str(tmp_path)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("not ready: ") and "1 class folders holding no image file" in last
    assert wnid in last, last


def test_an_unusable_image_beside_good_ones_is_not_ready(tmp_path, capsys):
    wnid = _imagenet(tmp_path / "imagenet", lambda d: (d / "a.JPEG").write_bytes(b"\xff\xd8"))
    os.mkfifo(tmp_path / "imagenet" / "train" / wnid / "b.JPEG")  # a reader would wait for ever
    assert download.main(["imagenet100", "--data-path", str(tmp_path)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "1 image names that are no regular non-empty file" in last and "b.JPEG" in last


def test_a_resume_the_server_starts_elsewhere_starts_over(tmp_path, server, capsys):
    """Before, a 206 from byte 0 was appended to the part as if from the part's end."""
    url, handler = server
    handler.files["f.bin"] = b"0123456789"
    handler.resume_from = 0
    (tmp_path / "f.bin.part").write_bytes(b"0123")
    download.fetch(f"{url}/f.bin", tmp_path / "f.bin", quiet=False)
    assert (tmp_path / "f.bin").read_bytes() == b"0123456789"
    err = _err_line(capsys)
    assert err.startswith("note: the server resumed f.bin.part not at byte 4"), err
    assert [r for cmd, _, r in handler.log if cmd == "GET"] == ["bytes=4-", None]


def test_a_refused_range_makes_the_part_the_file_only_at_its_size(tmp_path, server):
    """Before, any 416 made the part the file: one longer than the file was kept as it."""
    url, handler = server
    handler.files["g.bin"] = b"abcdef"
    (tmp_path / "g.bin.part").write_bytes(b"abcdefgh")
    download.fetch(f"{url}/g.bin", tmp_path / "g.bin")
    assert (tmp_path / "g.bin").read_bytes() == b"abcdef"


def test_a_refused_range_with_no_size_keeps_the_part(tmp_path, wrong_server):
    url, state = wrong_server
    state["answer"] = b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n"
    (tmp_path / "g.bin.part").write_bytes(b"abc")
    with pytest.raises(download.DownloadError, match="gives no size; delete g.bin.part"):
        download.fetch(f"{url}/g.bin", tmp_path / "g.bin")
    assert (tmp_path / "g.bin.part").read_bytes() == b"abc"
    assert not (tmp_path / "g.bin").exists()


def test_a_whole_answer_shorter_than_the_part_keeps_the_part(tmp_path, server):
    """Before, an error page answered with 200 to a Range request wiped what had arrived."""
    url, handler = server
    handler.honour_range = False
    handler.files["f.bin"] = b"<html>busy</html>"
    (tmp_path / "f.bin.part").write_bytes(b"x" * 40)
    with pytest.raises(download.DownloadError, match="the part is kept"):
        download.fetch(f"{url}/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin.part").read_bytes() == b"x" * 40


def test_every_archive_the_downloader_fetches_has_its_size_known():
    """The size bounds what a server may send; an archive torchvision replaced (a new MD5)
    would lose that bound unless it is recorded with it."""
    from train.jepa.datasets import IMAGE_SETS

    names = [name for name, image_set in IMAGE_SETS.items() if image_set.archive]
    assert names == ["cifar10", "cifar100", "stl10"]
    assert [download.archive_for(name).size for name in names] == [
        170_498_071,
        169_001_437,
        2_640_397_119,
    ]


@pytest.mark.timeout(30)  # before the fix the part grew without end, 2 GB in 8 s
@pytest.mark.parametrize("endless", ["chunked", "close"])
@pytest.mark.parametrize("part", [b"", b"XXXX"])
def test_a_body_without_end_stops_at_the_files_size_and_keeps_nothing_of_it(
    tmp_path, server, endless, part
):
    url, handler = server
    handler.endless = endless
    dest = tmp_path / "f.bin"
    if part:
        (tmp_path / "f.bin.part").write_bytes(part)
    with pytest.raises(download.DownloadError) as e:
        download.fetch(f"{url}/f.bin", dest, size=200_000)
    message = str(e.value)
    assert "\n" not in message and "sent more than the 200,000 bytes" in message, message
    kept = tmp_path / "f.bin.part"
    assert (kept.read_bytes() == part if part else not kept.exists()) and not dest.exists()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("size", ["known", "from HEAD", "none"])
def test_the_command_takes_no_more_than_the_archive_s_size(
    tmp_path, monkeypatch, server, capsys, size
):
    """The tester's server: HEAD says 10 bytes, the GET sends zeros without end. A known
    size bounds the body; else the size HEAD gives; with neither, nothing is written."""
    url, handler = server
    handler.endless = "close"
    handler.refuse_head = size == "none"
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", "0" * 32)  # a version torchvision does not know
    if size == "known":
        monkeypatch.setitem(download.ARCHIVE_SIZES, "0" * 32, 200_000)
    assert download.main(_cifar_args(tmp_path, url)) == 1
    err = _err_line(capsys)
    expected = {
        "known": "stopped: the server sent more than the 200,000 bytes",
        "from HEAD": "stopped: the server sent more than the 10 bytes",
        "none": "failed: the server gives no size for it",
    }[size]
    assert err.startswith(f"error: download of {url}/{tvd.CIFAR10.filename} {expected}"), err
    assert not (tmp_path / "cifar10").exists()  # nothing kept, not even the folder


def test_a_server_offering_more_than_the_known_size_is_refused_before_writing(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    url, handler = server
    archive = _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    monkeypatch.setitem(download.ARCHIVE_SIZES, tvd.CIFAR10.tgz_md5, len(archive) - 1)
    assert download.main(_cifar_args(tmp_path, url)) == 1
    err = _err_line(capsys)
    assert f"the server offers {len(archive):,} bytes, more than the {len(archive) - 1:,}" in err
    assert not (tmp_path / "cifar10" / (tvd.CIFAR10.filename + ".part")).exists()


def test_a_part_longer_than_the_archive_is_downloaded_anew(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    """Before, it was resumed: with a server that gives no size to the 416 (no HEAD) the
    command stopped, telling to delete it, each time."""
    url, handler = server
    archive = _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    monkeypatch.setitem(download.ARCHIVE_SIZES, tvd.CIFAR10.tgz_md5, len(archive))
    handler.refuse_head = True
    part = tmp_path / "cifar10" / (tvd.CIFAR10.filename + ".part")
    part.parent.mkdir()
    part.write_bytes(archive + b"what a stream without end sent")
    assert download.main(_cifar_args(tmp_path, url)) == 0, capsys.readouterr().err
    assert [r for cmd, _, r in handler.log if cmd == "GET"] == [None]
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()


def test_the_known_size_is_checked_for_room_when_the_server_gives_none(
    tmp_path, monkeypatch, jepa_files, server, capsys
):
    """Before, a server giving no size (HEAD refused, no Content-Length) was never checked
    against the free space."""
    url, handler = server
    archive = _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    monkeypatch.setitem(download.ARCHIVE_SIZES, tvd.CIFAR10.tgz_md5, len(archive))
    handler.refuse_head, handler.sized = True, False
    free = type("Usage", (), {"free": len(archive)})()
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: free)
    assert download.main(_cifar_args(tmp_path, url)) == 1
    err = _err_line(capsys)
    assert err.startswith(f"error: not enough disk space in {tmp_path / 'cifar10'}"), err
    assert handler.log == []


@pytest.mark.parametrize("target", ["ftp://127.0.0.1:1/x", "file:///etc/passwd", "x:y"])
def test_a_redirect_off_http_is_refused_naming_it(tmp_path, server, target):
    """Before, urllib followed ftp:// and the refused connection read "run the same command
    again"; file:// was a bare "HTTP 302"."""
    url, handler = server
    handler.redirects["f.bin"] = target
    expected = (
        f"download of {url}/f.bin failed: the server redirects to {target}, which is no "
        "http(s) URL; check the URL"
    )
    for call in (download.fetch, download.remote_size):
        with pytest.raises(download.DownloadError) as e:
            call(f"{url}/f.bin", *([tmp_path / "f.bin"] if call is download.fetch else []))
        assert str(e.value) == expected
    assert not (tmp_path / "f.bin.part").exists()


def test_a_redirect_to_http_is_followed(tmp_path, server):
    url, handler = server
    handler.files["g.bin"] = b"abcdef"
    handler.redirects["f.bin"] = "/g.bin"
    download.fetch(f"{url}/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == b"abcdef"


def test_a_download_that_gets_nothing_leaves_no_folder(tmp_path, capsys):
    """An offline run left an empty data/cifar10 (and data) behind; one that got part of the
    archive keeps its folder and the part (tested above)."""
    data = tmp_path / "data"
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert download.main(_cifar_args(data, f"http://127.0.0.1:{port}/x")) == 1
    assert "Connection refused" in _err_line(capsys)
    assert not data.exists()
