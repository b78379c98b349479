"""The real download path against a loopback HTTP server serving tiny archives."""

import contextlib
import errno
import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
from torchvision import datasets as tvd

from train.jepa import download
from train.jepa.datasets import imagenet100_classes


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []
    honour_range = True
    cut_after: int | None = None  # send this many bytes of the body, then stall or hang up
    stall_seconds = 0.0

    def _send(self, body: bool) -> None:
        data = self.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        header = self.headers.get("Range")
        self.log.append((self.command, self.path, header))
        if header and self.honour_range:
            start = int(header.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if body and self.cut_after is not None:
            self.wfile.write(data[start : start + self.cut_after])
            self.wfile.flush()
            time.sleep(self.stall_seconds)
            self.close_connection = True
        elif body:
            self.wfile.write(data[start:])

    def do_GET(self):  # noqa: N802
        self._send(True)

    def do_HEAD(self):  # noqa: N802
        self._send(False)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RangeHandler.files, _RangeHandler.log, _RangeHandler.honour_range = {}, [], True
    _RangeHandler.cut_after, _RangeHandler.stall_seconds = None, 0.0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _RangeHandler
    httpd.shutdown()
    httpd.server_close()


def _serve_cifar(tmp_path, monkeypatch, jepa_files, handler):
    src = tmp_path / "src"
    md5s = jepa_files.write_cifar(src, "cifar10")
    archive = jepa_files.tar_gz(src / "cifar-10-batches-py", "cifar-10-batches-py")
    handler.files[tvd.CIFAR10.filename] = archive
    jepa_files.patch_md5s(monkeypatch, "cifar10", md5s)
    return archive


def test_cifar_download_good_checksum(tmp_path, monkeypatch, jepa_files, server, capsys):
    url, handler = server
    archive = _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
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
    _serve_cifar(tmp_path, monkeypatch, jepa_files, handler)  # real MD5 kept: no match
    data = tmp_path / "data"
    code = download.main(["cifar10", "--data-path", str(data), "--base-url", url, "--quiet"])
    assert code == 1
    assert "checksum mismatch" in capsys.readouterr().err
    leftovers = [p.name for p in (data / "cifar10").iterdir()]
    assert leftovers == []


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


def test_imagenet_prints_steps_and_verifies_structure(tmp_path, capsys):
    root = Path(tmp_path) / "imagenet"
    assert download.main(["imagenet100", "--data-path", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "ILSVRC2012_img_train.tar" in err and "not ready" in err
    for split in ("train", "val"):
        for wnid in imagenet100_classes():
            (root / split / wnid).mkdir(parents=True)
            (root / split / wnid / "a.JPEG").write_bytes(b"")
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


def _full_after(f, write, block, limit: int) -> int:
    """``write`` as a disk with ``limit`` bytes free: a short write, then ENOSPC."""
    room = limit - f.tell()
    if room <= 0:
        raise OSError(errno.ENOSPC, "No space left on device")
    return write(bytes(block[:room]))


def test_a_stopped_download_is_one_line_exit_130(tmp_path, monkeypatch, capsys):
    """Ctrl-C (or SIGTERM) mid-transfer: before, a traceback; the .part stays for the next run."""

    def stopped(url, dest, quiet=True):
        (dest.parent / (dest.name + ".part")).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "fetch", stopped)
    monkeypatch.setattr(download, "remote_size", lambda url: 4)  # no note about its size
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
    # the whole command: the HEAD of the disk-space estimate meets it first
    code = download.main(["cifar10", "--data-path", str(tmp_path), "--base-url", url])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: download of {url}/{tvd.CIFAR10.filename} failed"), err
    # the GET of a resumed download
    with pytest.raises(download.DownloadError) as e:
        download.fetch(f"{url}/{tvd.CIFAR10.filename}", part.with_suffix(""))
    assert "\n" not in str(e.value) and f"download of {url}/" in str(e.value), e.value
    assert part.read_bytes() == b"what arrived before"
