import json
import os
import subprocess
import sys
from pathlib import Path

from train.saliency.verify import main

ROOT = Path(__file__).resolve().parents[3]


def test_counts_per_category(cat2000_dir, capsys):
    assert main([str(cat2000_dir), "--json", "--quiet"]) == 0
    inv = json.loads(capsys.readouterr().out)
    assert inv["dataset"] == "CAT2000" and inv["layout"] == "images"
    assert inv["categories"]["Action"] == {
        "stimuli": 2,
        "with_fixations": 2,
        "fixations": 5,
        "with_maps": 2,
    }
    assert inv["categories"]["Indoor"]["fixations"] == 4
    assert inv["missing_fixations"] == [] and inv["missing_maps"] == []


def test_missing_fixations_named_with_source(mit1003_dir, capsys):
    (mit1003_dir / "ALLFIXATIONMAPS" / "i001_scene_fixPts.jpg").unlink()
    assert main([str(mit1003_dir), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "missing fixations for 1 stimuli (e.g. i001_scene.jpeg)" in out
    assert "WherePeopleLook" in out


def test_not_a_dataset_is_one_line_no_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "train.saliency.verify", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "not a saliency dataset" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_arguments_are_one_line(tmp_path):
    for module, args in (
        ("train.saliency", ["--epochs", "2"]),
        ("train.saliency.convert", ["a", "b", "--to", "png"]),
    ):
        r = subprocess.run(
            [sys.executable, "-m", module, *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT)},
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (module, r.stderr)


def test_a_file_or_fifo_given_as_the_dataset_is_not_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    for name in ("file", "fifo"):
        assert main([str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {tmp_path / name}: not a folder;"), err


def test_a_stopped_verify_is_one_line_exit_130(mit1003_dir, capsys, monkeypatch):
    import train.saliency.verify as verify

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM

    monkeypatch.setattr(verify, "inventory", stopped)
    assert verify.main([str(mit1003_dir)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "interrupted: verify reads only; nothing was changed"
