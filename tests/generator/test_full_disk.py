"""A full disk: preflight refuses; without it the run stops cleanly and resumes identically.

Needs a small size-limited filesystem, so the test mounts a tmpfs and is
skipped (with the reason) where it cannot: not root, or no mount permission.
"""

import os
import subprocess

import pytest

from generator.dataformat.validate import validate


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_preflight_refuses_when_short(small_fs, cli, capsys):
    root = small_fs / "ds"
    assert cli("preflight", "--n", 40, "--out", root) == 1
    assert capsys.readouterr().out.startswith("FAIL: 40 samples need about")
    assert cli("--n", 40, "--out", root, "--workers", 1) == 1
    err = capsys.readouterr().err
    assert "not enough disk space" in err and "free" in err
    assert not root.exists()


def test_full_disk_stops_cleanly_and_resumes_identically(small_fs, tmp_path, cli, capsys, digests):
    ref = tmp_path / "ref"
    assert cli("--n", 24, "--out", ref, "--workers", 1, "--checkpoint-every", 4, "--quiet") == 0

    root = small_fs / "ds"
    code = cli(
        "--n",
        24,
        "--out",
        root,
        "--workers",
        2,
        "--checkpoint-every",
        4,
        "--no-preflight",
        "--quiet",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "write failed" in err and "--resume" in err and "Traceback" not in err
    assert not list(root.rglob(".tmp-*")), "temporary files were left behind"
    kept = list((root / "videos").glob("*.pt"))
    assert 4 <= len(kept) < 24

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    assert (
        cli(
            "--n", 24, "--out", root, "--workers", 2, "--checkpoint-every", 4, "--resume", "--quiet"
        )
        == 0
    )
    assert digests(root) == digests(ref)
    assert validate(root).failed == 0
