"""Bad input gets one clear line and exit 2, and harms nothing already written."""

import json
import os
import shutil

import pydantic
import pytest

from trajkit.lock import FolderLock


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--n", "0"], "must be positive"),
        (["--n", "-5"], "must be positive"),
        (["--n", "ten"], "expected a whole number"),
        (["--n", "4", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--n", "4", "--workers", "0"], "must be 1..1024, got 0"),
        (["--n", "4", "--seed", "-1"], "must be 0..4294967295, got -1"),  # as above the range
    ],
)
def test_bad_flags(tmp_path, cli, capsys, args, expect):
    with pytest.raises(SystemExit) as e:
        cli(*args, "--out", tmp_path / "x")
    assert e.value.code == 2
    assert expect in _one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_verify_needs_resume(tmp_path, cli, capsys):
    """It checks the samples a --resume keeps; alone it was taken and did nothing."""
    with pytest.raises(SystemExit) as e:
        cli("--n", 1, "--out", tmp_path / "x", "--workers", 1, "--verify")
    assert e.value.code == 2
    assert "--verify checks the samples a --resume keeps: it needs --resume" in _one_line_error(
        capsys
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("text", ["", "\n\n", "# hard, emptied by a failed copy\n", "{}\n"])
def test_a_config_holding_no_settings_is_refused(tmp_path, cli, capsys, text):
    """It was taken as all defaults: an emptied hard.yaml made an easy dataset."""
    empty = tmp_path / "hard.yaml"
    empty.write_text(text)
    assert cli("--n", 1, "--out", tmp_path / "a", "--workers", 1, "--config", empty) == 2
    assert f"config {empty} holds no settings" in _one_line_error(capsys)
    assert not (tmp_path / "a").exists()


def test_broken_yaml_and_out_of_range_config(tmp_path, cli, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("frames: [1, 2\n")
    assert cli("--n", 4, "--out", tmp_path / "a", "--config", bad) == 2
    assert "not valid YAML" in _one_line_error(capsys)
    bad.write_text("frames: 1\nappearance:\n  noise_std: -3\n")
    assert cli("--n", 4, "--out", tmp_path / "a", "--config", bad) == 2
    err = _one_line_error(capsys)
    assert "frames:" in err and "appearance.noise_std:" in err
    bad.write_text("circular:\n  radius: {lo: 2.0, hi: 1.0}\n")
    assert cli("--n", 4, "--out", tmp_path / "a", "--config", bad) == 2
    assert "circular.radius" in _one_line_error(capsys)
    assert not (tmp_path / "a").exists()


def test_dataset_of_an_older_renderer_is_kept_apart(tmp_path, cli, capsys, digests):
    """Its samples' bytes differ from this renderer's: resuming would mix two, converting keeps its version."""
    from generator.render.sample import RENDER_VERSION

    root = tmp_path / "ds"
    assert cli("--n", 4, "--out", root, "--workers", 1, "--quiet") == 0
    assert json.loads((root / "metadata.json").read_text())["render_version"] == RENDER_VERSION
    fp = root / "checkpoints" / "fingerprint.json"
    made_before_versions = json.loads(fp.read_text())
    del made_before_versions["render_version"]
    fp.write_text(json.dumps(made_before_versions))
    meta = json.loads((root / "metadata.json").read_text())
    del meta["render_version"]
    meta["cameras"][0]["t"][0] += 1e-12  # version 1 computed the rig's last bits otherwise
    (root / "metadata.json").write_text(json.dumps(meta))
    before = digests(root)
    assert cli("--n", 8, "--out", root, "--resume") == 2
    assert f"renderer version 1 and this generator draws version {RENDER_VERSION}" in (
        _one_line_error(capsys)
    )
    assert digests(root) == before
    copy = tmp_path / "copy"
    assert cli("convert", root, copy, "--format", "shards", "--workers", 1) == 0
    assert (
        json.loads((copy / "checkpoints" / "fingerprint.json").read_text())["render_version"] == 1
    )
    copied = json.loads((copy / "metadata.json").read_text())
    assert copied["render_version"] == 1
    assert copied["cameras"] == meta["cameras"]


def test_existing_dataset_needs_resume_and_is_untouched(tmp_path, cli, capsys, digests):
    root = tmp_path / "ds"
    assert cli("--n", 4, "--out", root, "--workers", 1, "--quiet") == 0
    before = digests(root)
    meta = (root / "metadata.json").read_text()
    assert cli("--n", 8, "--out", root, "--workers", 1) == 2
    assert "pass --resume" in _one_line_error(capsys)
    assert cli("--n", 4, "--out", root, "--seed", 3, "--resume") == 2
    assert "different settings (seed)" in _one_line_error(capsys)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("fps: 35\nappearance: {noise_std: 1.0}\n")  # fps 25: no parabola fits
    assert cli("--n", 4, "--out", root, "--resume", "--config", cfg) == 2
    assert "config.appearance.noise_std, config.fps" in _one_line_error(capsys)
    assert cli("--n", 2, "--out", root, "--resume") == 2
    assert "already holds 4 samples" in _one_line_error(capsys)
    assert digests(root) == before and (root / "metadata.json").read_text() == meta


def test_foreign_folder_is_refused(tmp_path, cli, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert cli("--n", 4, "--out", tmp_path) == 2
    assert "not a dataset of this generator" in _one_line_error(capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def _snapshot(root):
    """Every entry under ``root``: a file's bytes, or None for a folder."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def _foreign_folder(root, lock):
    (root / "sub").mkdir(parents=True)
    (root / ".tmp-precious").write_text("p")
    (root / "sub" / ".tmp-notes").write_text("n")
    (root / "readme.txt").write_text("a")
    if lock is not None:
        (root / ".lock").write_text(lock)


@pytest.mark.parametrize("lock", [None, "my lock", ""])
def test_a_refused_folder_is_left_byte_for_byte(small_dataset, tmp_path, cli, capsys, lock):
    """Neither generate nor convert removes a file called .tmp-* from a folder it refuses,
    nor empties a .lock that is someone else's file, nor leaves a .lock of its own."""
    out = tmp_path / "mine"
    _foreign_folder(out, lock)
    before = _snapshot(out)
    assert cli("--n", 4, "--out", out, "--workers", 1) == 2
    err = _one_line_error(capsys)
    assert ("not a lock file" if lock else "not a dataset of this generator") in err
    assert _snapshot(out) == before
    assert cli("convert", small_dataset, out, "--format", "pt", "--workers", 1) == 2
    err = _one_line_error(capsys)
    assert ("not a lock file" if lock else "is not empty") in err
    assert _snapshot(out) == before


def test_a_new_dataset_inside_another_is_refused(small_dataset, tmp_path, cli, capsys, digests):
    """A dataset written into another one would be a stray folder there, failing its
    validate; so would one under a dataset still being generated (no metadata.json yet)."""
    before = digests(small_dataset)
    (tmp_path / "link").symlink_to(small_dataset)
    under_way = tmp_path / "under_way"
    (under_way / "checkpoints").mkdir(parents=True)
    (under_way / "checkpoints" / "fingerprint.json").write_text("{}")
    for out, holder in (
        (small_dataset / "sub", small_dataset),
        (small_dataset / "videos" / "deeper" / "x", small_dataset),
        (tmp_path / "link" / "sub", small_dataset),
        (under_way / "sub", under_way),
    ):
        assert cli("--n", 4, "--out", out) == 2
        assert f"inside the dataset {holder.resolve()};" in _one_line_error(capsys)
        assert not out.exists()
    assert digests(small_dataset) == before
    assert cli("validate", small_dataset, "--quick") == 0
    assert cli("--n", 4, "--out", tmp_path / "beside", "--quiet") == 0  # a sibling is fine


def test_out_is_a_file(tmp_path, cli, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert cli("--n", 4, "--out", f) == 2
    assert "is a file" in _one_line_error(capsys)


def _under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "ds", "Not a directory"


def _under_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    return tmp_path / "fifo" / "ds", "Not a directory"


def _name_too_long(tmp_path):
    return tmp_path / ("d" * 300) / "ds", "File name too long"


def _read_only_parent(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder; the other cases hold for root too")
    (tmp_path / "ro").mkdir(mode=0o500)
    return tmp_path / "ro" / "ds", "Permission denied"


@pytest.mark.parametrize(
    "where",
    [_under_a_file, _under_a_fifo, _name_too_long, _read_only_parent],
    ids=lambda f: f.__name__,
)
def test_unwritable_folder(tmp_path, cli, capsys, where):
    """A folder that cannot be created, even by root (CI runs as root): one line, exit 2."""
    out, reason = where(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert cli("--n", 4, "--out", out) == 2
    err = _one_line_error(capsys)
    assert f"cannot create {out}: {reason}" in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_second_writer_is_refused_naming_the_holder(tmp_path, cli, capsys):
    root = tmp_path / "ds"
    root.mkdir()
    with FolderLock(root / ".lock"):
        assert cli("--n", 4, "--out", root, "--workers", 1) == 2
        err = _one_line_error(capsys)
        assert f"process {os.getpid()}" in err
    assert cli("--n", 4, "--out", root, "--workers", 1, "--quiet") == 0


def test_lock_of_a_dead_process_is_taken_over(tmp_path, cli):
    root = tmp_path / "ds"
    root.mkdir()
    (root / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone", "since": "yesterday"}))
    assert cli("--n", 4, "--out", root, "--workers", 1, "--quiet") == 0
    assert json.loads((root / "metadata.json").read_text())["total_samples"] == 4


def test_damaged_fingerprint_is_one_line(tmp_path, cli, capsys):
    root = tmp_path / "ds"
    assert cli("--n", 4, "--out", root, "--workers", 1, "--quiet") == 0
    (root / "checkpoints" / "fingerprint.json").write_text("{oops")
    assert cli("--n", 8, "--out", root, "--resume") == 2
    assert "fingerprint.json is damaged" in _one_line_error(capsys)


def test_resume_rechecks_samples_after_the_last_manifest(tmp_path, cli, digests):
    ref = tmp_path / "ref"
    assert cli("--n", 12, "--out", ref, "--workers", 1, "--checkpoint-every", 6, "--quiet") == 0
    root = tmp_path / "ds"
    assert cli("--n", 12, "--out", root, "--workers", 1, "--checkpoint-every", 6, "--quiet") == 0
    # Simulate a crash in the second chunk: no manifest or metadata, one damaged video, one lost label.
    (root / "checkpoints" / "checkpoint_12.json").unlink()
    (root / "metadata.json").unlink()
    (root / "videos" / "sample_0008.pt").write_bytes(b"half a file")
    (root / "labels" / "sample_0010.json").unlink()
    assert (
        cli(
            "--n", 12, "--out", root, "--workers", 1, "--checkpoint-every", 6, "--resume", "--quiet"
        )
        == 0
    )
    assert digests(root) == digests(ref)
    assert cli("validate", root) == 0


def test_preview_png_and_gif(small_dataset, tmp_path, cli, capsys):
    from PIL import Image

    png, gif = tmp_path / "s.png", tmp_path / "s.gif"
    assert cli("preview", small_dataset, "--index", 3, "--out", png) == 0
    assert cli("preview", small_dataset, "--index", 3, "--out", gif) == 0
    assert Image.open(png).size[0] > 600
    im = Image.open(gif)
    assert im.n_frames == 32
    assert cli("preview", small_dataset, "--index", 99, "--out", png) == 2
    assert "out of range" in capsys.readouterr().err
    assert cli("preview", small_dataset, "--out", tmp_path / "x.jpg") == 2


def test_a_folder_being_written_is_named_so_not_sent_to_resume(
    small_dataset, tmp_path, cli, capsys
):
    """preview advised "finish it with python -m generator --resume" while the writer ran."""
    root = tmp_path / "ds"
    shutil.copytree(small_dataset, root)
    (root / "metadata.json").unlink()
    with FolderLock(root / ".lock"):
        assert cli("preview", root, "--out", tmp_path / "p.png") == 1
        err = _one_line_error(capsys)
        assert f"{root} is being written by process {os.getpid()} on " in err
        assert "--resume" not in err
        assert cli("validate", root) == 1
        assert f"{root} is being written by process {os.getpid()}" in capsys.readouterr().out
    assert cli("preview", root, "--out", tmp_path / "p.png") == 1  # stopped: now it is advice
    assert "finish it with python -m generator --resume" in _one_line_error(capsys)
    assert not (tmp_path / "p.png").exists()


def test_preflight_command(tmp_path, cli, capsys):
    assert cli("preflight", "--n", 10, "--out", tmp_path / "new") == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 10 samples need about") and "free on" in out


def test_preflight_bounds_the_real_sample_size(small_dataset):
    """The size estimate (made without torch) is never below what a sample takes on disk."""
    from generator.config import GeneratorConfig
    from generator.pipeline.preflight import bytes_per_sample

    cfg = GeneratorConfig.model_validate(
        json.loads((small_dataset / "metadata.json").read_text())["config"]
    )
    videos = list((small_dataset / "videos").glob("*.pt"))
    labels = list((small_dataset / "labels").glob("*.json"))
    largest = max(p.stat().st_size for p in videos) + max(p.stat().st_size for p in labels)
    assert largest <= bytes_per_sample(cfg) <= largest + 3 * 4096 + 300


def test_preview_into_a_new_folder_and_onto_an_unwritable_path(
    small_dataset, tmp_path, cli, capsys
):
    out = tmp_path / "new" / "deeper" / "sheet.png"
    assert cli("preview", small_dataset, "--index", 0, "--out", out) == 0
    assert out.stat().st_size > 0
    (tmp_path / "file").write_text("x")
    assert cli("preview", small_dataset, "--index", 0, "--out", tmp_path / "file" / "a.png") == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_preview_to_a_name_of_250_characters(small_dataset, tmp_path, cli, capsys):
    """It was "cannot write ...: File name too long": the temporary's name added 11."""
    out = tmp_path / ("b" * 246 + ".png")
    assert cli("preview", small_dataset, "--index", 0, "--out", out) == 0, capsys.readouterr().err
    assert out.read_bytes()[:4] == b"\x89PNG" and os.listdir(tmp_path) == [out.name]


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_a_preview_that_cannot_be_written_keeps_the_old_picture(
    small_dataset, tmp_path, cli, capsys, monkeypatch, suffix
):
    """A full disk mid-picture: before, the old picture became a 0-byte file."""
    import errno

    import generator.preview as preview

    def half_then_full(video, label, meta, out):
        out.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / f"sheet{suffix}"
    out.write_bytes(b"the old picture")
    monkeypatch.setattr(
        preview, "contact_sheet" if suffix == ".png" else "animation", half_then_full
    )
    assert cli("preview", small_dataset, "--index", 0, "--out", out) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == b"the old picture" and [p.name for p in tmp_path.iterdir()] == [
        out.name
    ]


def test_a_folder_made_for_a_dataset_that_cannot_be_locked_is_removed(tmp_path, monkeypatch):
    """A full disk fails the lock's note of its holder: the empty folder made for it goes,
    a folder the user made stays."""
    import errno

    from generator.dataformat.layout import FolderError, open_folder
    from trajkit.lock import FolderLock

    def full(self):
        self.path.touch()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FolderLock, "acquire", full)
    with pytest.raises(FolderError, match="cannot lock .*No space left on device"):
        open_folder(tmp_path / "new" / "ds")
    assert not (tmp_path / "new" / "ds").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(FolderError):
        open_folder(tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()


@pytest.mark.parametrize("typo, hint", [("validat", "did you mean 'validate'?"), ("frob", "")])
def test_unknown_command_is_named_not_taken_for_a_generation(tmp_path, cli, capsys, typo, hint):
    assert cli(typo, tmp_path) == 2
    err = _one_line_error(capsys)
    assert f"unknown command {typo!r}" in err and hint in err
    assert "--n" not in err


class _Unserializable(pydantic.BaseModel):
    """A model whose serializer is where Ctrl-C lands: pydantic re-raises it as its own error."""

    x: int = 0

    @pydantic.field_serializer("x")
    def _ctrl_c(self, value):
        raise KeyboardInterrupt


@pytest.mark.parametrize("command", ["validate", "preview", "convert", "preflight", "generate"])
def test_ctrl_c_anywhere_is_one_line_and_130(tmp_path, cli, capsys, monkeypatch, command):
    import generator.__main__ as entry

    def interrupted(argv):
        _Unserializable().model_dump()  # raises PydanticSerializationError from the Ctrl-C

    if command == "generate":
        monkeypatch.setattr(entry, "main_generate", interrupted)
        code = cli("--n", 4, "--out", tmp_path)
    else:
        monkeypatch.setattr(entry, "_command", lambda name: interrupted)
        code = cli(command, tmp_path)
    assert code == 130
    assert _one_line_error(capsys) == f"interrupted: {entry.INTERRUPTED[command]}"


def test_an_error_not_caused_by_ctrl_c_is_not_called_an_interruption(monkeypatch):
    import generator.__main__ as entry

    monkeypatch.setattr(entry, "_command", lambda name: lambda argv: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        entry.main(["validate", "x"])


def test_a_shipped_config_is_taken_by_its_name(tmp_path, capsys):
    """As every other command's --config: ``--config hard`` was "cannot read config hard"."""
    from generator.config import ConfigError, load_config
    from trajkit.presets import preset_file

    for name in ("easy", "medium", "hard"):
        assert load_config(name) == load_config(preset_file("generator", name))
    with pytest.raises(ConfigError, match="neither a file nor a shipped generator config"):
        load_config("hardest")


def test_a_config_key_with_a_line_break_is_named_on_one_line(tmp_path, capsys):
    """pydantic's location of an unknown key is the key as written: it split the error."""
    from generator.__main__ import main

    config = tmp_path / "nl.yaml"
    config.write_text('"evil\\nkey": 1\n')
    assert (
        main(["preflight", "--n", "4", "--out", str(tmp_path / "o"), "--config", str(config)]) == 2
    )
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "evil\\nkey: Extra inputs are not permitted" in err, err
