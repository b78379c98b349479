"""What a hostile tester found: each bad input is one line and the right exit status, never a
traceback or a hang, and no real dataset is refused for it."""

import json
import os
import re
import shutil

import pytest
import yaml

from generator.dataformat.layout import Layout
from tests.generator.conftest import ROOT
from trajkit.yamlfile import read_yaml_mapping

BIG = 10**400  # a 401-digit integer literal in the JSON


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _write_metadata(root, text: str) -> None:
    (root / "metadata.json").write_text(text)


def _edit_metadata(root, **changes) -> None:
    """Set keys of ``metadata.json`` to raw JSON text (a number Python's json would refuse to
    write, NaN) without a round trip through Python values."""
    meta = json.loads((root / "metadata.json").read_text())
    for key in changes:
        meta[key] = f"@{key}@"
    text = json.dumps(meta)
    for key, raw in changes.items():
        text = text.replace(f'"@{key}@"', raw)
    _write_metadata(root, text)


def _metadata_failure(cli, capsys, root) -> str:
    """validate's verdict on a dataset whose metadata is refused: exit 1, that one problem."""
    capsys.readouterr()
    assert cli("validate", root) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("       - ")]
    assert "FAIL metadata: 1 problem(s)" in out and len(problems) == 1, out
    return problems[0]


# ---------------------------------------------------------------- 1: huge counts, no hang


@pytest.mark.timeout(180)
def test_a_sample_count_no_folder_holds_is_one_line_not_a_hang(
    small_dataset, small_shard_dataset, tmp_path, subprocess_cli
):
    """validate spun on ``range(10**400)``; a count consistent with every other key (class
    counts, stem width) is reported as missing samples, counted, not listed one by one."""
    lone = _copy(small_dataset, tmp_path / "lone")
    _edit_metadata(lone, total_samples=str(BIG))
    run = subprocess_cli("validate", lone, timeout=60)
    assert run.returncode == 1 and "is not the sum of class_distribution" in run.stdout
    n = 10**190
    for name, src in (("pt", small_dataset), ("shards", small_shard_dataset)):
        root = _copy(src, tmp_path / name)
        meta = json.loads((root / "metadata.json").read_text())
        counts = {c: n // len(meta["classes"]) for c in meta["classes"]}
        meta.update(total_samples=n, class_distribution=counts, stem_width=191, checkpoints=[])
        _write_metadata(root, json.dumps(meta))
        fp = root / "checkpoints" / "fingerprint.json"
        fp.write_text(json.dumps({**json.loads(fp.read_text()), "stem_width": 191}))
        run = subprocess_cli("validate", root, timeout=60)
        assert run.returncode == 1 and "samples are in no checkpoint manifest" in run.stdout
        assert "Traceback" not in run.stderr, run.stderr
        run = subprocess_cli("preview", root, "--out", tmp_path / f"{name}.png", timeout=60)
        assert run.returncode == 1 and "in no checkpoint manifest" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.mark.parametrize(
    "key, raw",
    [
        ("total_samples", str(BIG)),
        ("stem_width", str(BIG)),  # was a traceback: "Too many decimal digits in format string"
        ("frames", str(BIG)),
        ("video_shape", f"[4, {BIG}, 3, 64, 64]"),
        ("video_shape", f"[{BIG}, 32, 3, 64, 64]"),
        ("video_shape", f"[4, 32, 3, {BIG}, {BIG}]"),
        ("horizon", str(BIG)),
        ("future_frame_index", str(BIG)),
        ("seed", str(BIG)),
        ("class_distribution", f'{{"Linear": {BIG}}}'),
    ],
)
def test_a_huge_integer_in_metadata_is_one_line(small_dataset, tmp_path, cli, capsys, key, raw):
    """A short line: a value it quotes shows its first and last digits (all 401 were printed)."""
    root = _copy(small_dataset, tmp_path / "ds")
    _edit_metadata(root, **{key: raw})
    line = _metadata_failure(cli, capsys, root)
    assert "metadata.json is damaged: " in line
    assert str(BIG) not in line and len(line) < 300, line


def test_a_huge_size_in_a_manifest_is_quoted_short(small_dataset, tmp_path, cli, capsys):
    root = _copy(small_dataset, tmp_path / "ds")
    manifest = root / "checkpoints" / "checkpoint_10.json"
    text = manifest.read_text()
    manifest.write_text(re.sub(r'"video_bytes": \d+', f'"video_bytes": {BIG}', text, count=1))
    assert cli("validate", root, "--quick") == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "its manifest records" in x)
    assert str(BIG) not in line and len(line) < 200, line


@pytest.mark.parametrize("key", ["format_version", "format"])
def test_a_huge_format_is_quoted_short(small_dataset, tmp_path, cli, capsys, key):
    root = _copy(small_dataset, tmp_path / "ds")
    _edit_metadata(root, **{key: str(BIG)})
    line = _metadata_failure(cli, capsys, root)
    assert f"metadata.json has {key} " in line
    assert str(BIG) not in line and len(line) < 300, line


# ---------------------------------------------------------------- 2: unparseable JSON and YAML


@pytest.mark.parametrize(
    "text, why",
    [("[" * 100_000, "nested too deeply"), ("1" * 5000, "a number of more than 4,300 digits")],
    ids=["nested", "5000-digit"],
)
def test_metadata_python_cannot_parse_is_one_line_everywhere(
    small_dataset, tmp_path, cli, capsys, text, why
):
    """Python's own words for a 5,000-digit number advised sys.set_int_max_str_digits(), a
    call the user of a command cannot make."""
    root = _copy(small_dataset, tmp_path / "ds")
    _write_metadata(root, text)
    assert why in _metadata_failure(cli, capsys, root)
    assert cli("preview", root, "--out", tmp_path / "p.png") == 1  # damage, as convert's
    assert why in _one_line(capsys)
    assert cli("convert", root, tmp_path / "new", "--format", "shards") == 1
    assert why in _one_line(capsys) and not (tmp_path / "new").exists()


def test_convert_of_a_config_no_generator_loads_is_one_line(small_dataset, tmp_path, cli, capsys):
    root = _copy(small_dataset, tmp_path / "ds")
    _edit_metadata(root, config='{"frames": [[1]]}')
    assert cli("convert", root, tmp_path / "new", "--format", "shards") == 1
    err = _one_line(capsys)
    assert "metadata.json is damaged: config: frames: [[1]] is not a whole number" in err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "text, why",
    [
        ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply to read"),
        ("frames: 1" + "0" * 5000 + "\n", "is not valid YAML: a number of more than 4,300 digits"),
    ],
    ids=["nested", "5000-digit"],
)
def test_a_yaml_config_python_cannot_build_is_one_line(tmp_path, cli, capsys, text, why):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ValueError, match=re.escape(why)):
        read_yaml_mapping(config)
    assert cli("--n", 4, "--out", tmp_path / "ds", "--config", config) == 2
    assert why in _one_line(capsys) and not (tmp_path / "ds").exists()
    assert cli("preflight", "--n", 4, "--out", tmp_path / "ds", "--config", config) == 2
    assert why in _one_line(capsys)


# ---------------------------------------------------------------- 3: duplicate YAML keys


@pytest.mark.parametrize(
    "text, key, lines",
    [
        (
            "appearance:\n  noise_std: 2.0\nframes: 16\nappearance: {noise_std: 4.0}\n",
            "appearance",
            "1 and 4",
        ),
        ("frames: 16\nappearance:\n  noise_std: 2.0\n  noise_std: 3.0\n", "noise_std", "3 and 4"),
        ("{frames: 16, frames: 24}\n", "frames", "1 and 1"),
    ],
)
def test_a_key_given_twice_is_named_with_its_lines(tmp_path, cli, capsys, text, key, lines):
    """YAML keeps the last silently: the line a researcher edited could be the one ignored."""
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert cli("--n", 4, "--out", tmp_path / "ds", "--config", config) == 2
    err = _one_line(capsys)
    assert f"key {key!r} is given twice (lines {lines})" in err and str(config) in err


def test_a_merge_key_may_still_be_overridden(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("base: &b {lo: 1.0, hi: 2.0}\nspeed:\n  <<: *b\n  hi: 3.0\n")
    assert read_yaml_mapping(config)["speed"] == {"lo": 1.0, "hi": 3.0}


# ---------------------------------------------------------------- 4: contradictory metadata


@pytest.mark.parametrize(
    "changes, why",
    [
        ({"frames": "0"}, "frames 0 differs from video_shape's 32"),
        ({"frames": "1", "video_shape": "[4, 1, 3, 64, 64]"}, "frames must be 2..512"),
        ({"scene_extent": "NaN"}, "scene_extent: Input should be a finite number"),
        ({"scene_extent": "Infinity"}, "scene_extent: Input should be a finite number"),
        ({"scene_extent": "-7.5"}, "scene_extent must be above 0"),
        ({"fps": "0.0"}, "fps must be above 0"),
        ({"video_shape": "[4, 32, 3, 64, 32]"}, "square images"),
        ({"video_shape": "[2, 32, 3, 64, 64]"}, "video_shape has 2 cameras, cameras lists 4"),
        ({"future_frame_index": "40"}, "future_frame_index must be frames - 1 + horizon"),
        ({"class_distribution": '{"Linear": -1}'}, "class_distribution must count each"),
        ({"total_samples": "25"}, "total_samples 25 is not the sum of class_distribution"),
        ({"stem_width": "2"}, "stem_width 2 is not 4..200"),
        ({"generation_time_seconds": "-1.0"}, "generation_time_seconds must not be negative"),
        ({"scene_bounds": '{"x": [1.0, -1.0]}'}, "scene_bounds must give x, y and z"),
    ],
)
def test_metadata_no_generator_writes_is_refused(
    small_dataset, tmp_path, cli, capsys, changes, why
):
    root = _copy(small_dataset, tmp_path / "ds")
    _edit_metadata(root, **changes)
    assert why in _metadata_failure(cli, capsys, root)


GROUND_TRUTH = {"image_size": 16, "frames": 8, "ground_truth": {"enabled": True, "masks": True}}


@pytest.mark.parametrize("fmt", ["pt", "shards"])
@pytest.mark.parametrize("level", ["default", "hard"])
def test_fresh_datasets_pass_the_stricter_metadata(tmp_path, cli, fmt, level):
    """Every kind of dataset the generator writes still validates: either layout, the
    default and the hard level, with per-frame ground truth."""
    hard = ROOT / "configs" / "generator" / "hard.yaml"
    raw = {} if level == "default" else yaml.safe_load(hard.read_text())
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**raw, **GROUND_TRUTH}))
    root = tmp_path / "ds"
    args = ["--n", 7, "--out", root, "--config", config, "--workers", 1, "--quiet"]
    assert cli(*args, "--checkpoint-every", 4, "--format", fmt) == 0
    assert cli("validate", root) == 0


# ---------------------------------------------------------------- 5: preflight judges --out


def _a_file(tmp_path, dataset):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file"


def _through_a_file(tmp_path, dataset):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "ds"


def _other_files(tmp_path, dataset):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    return tmp_path / "mine"


def _inside_a_dataset(tmp_path, dataset):
    return _copy(dataset, tmp_path / "ds") / "videos" / "new"


def _a_link_loop(tmp_path, dataset):
    os.symlink("loop", tmp_path / "loop")
    return tmp_path / "loop"


@pytest.mark.parametrize(
    "where",
    [_a_file, _through_a_file, _other_files, _inside_a_dataset, _a_link_loop],
    ids=lambda f: f.__name__,
)
def test_preflight_refuses_the_out_generate_refuses(small_dataset, tmp_path, cli, capsys, where):
    """It said OK for an --out that generate then refused; now the same line, exit 2."""
    out = where(tmp_path, small_dataset)
    assert cli("--n", 4, "--out", out, "--quiet") == 2
    refusal = _one_line(capsys)
    assert cli("preflight", "--n", 4, "--out", out) == 2
    assert _one_line(capsys) == refusal


# ---------------------------------------------------------------- 6: preview into a dataset


@pytest.mark.parametrize("where", ["sheet.png", "videos/sheet.gif", "new/sheet.png"])
def test_preview_refuses_to_write_into_a_dataset(small_dataset, tmp_path, cli, capsys, where):
    root = _copy(small_dataset, tmp_path / "ds")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert cli("preview", root, "--out", root / where) == 2
    assert "is inside the dataset" in _one_line(capsys)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert cli("validate", root, "--quick") == 0


@pytest.mark.parametrize("kind", ["a FIFO", "a file"])
def test_preview_into_a_folder_that_is_no_folder_says_so(
    small_dataset, tmp_path, cli, capsys, kind
):
    """It was "cannot write .../x.png: File exists"."""
    parent = tmp_path / "pictures"
    if kind == "a FIFO":
        os.mkfifo(parent)
    else:
        parent.write_text("mine\n")
    assert cli("preview", small_dataset, "--out", parent / "x.png") == 1
    assert _one_line(capsys) == f"error: cannot write {parent / 'x.png'}: {parent} is not a folder"


# ---------------------------------------------------------------- 7: --scheduler alone


def test_a_scheduler_without_the_dask_backend_is_refused(tmp_path, cli, capsys):
    with pytest.raises(SystemExit) as e:
        cli("--n", 4, "--out", tmp_path / "ds", "--scheduler", "tcp://host:8786")
    assert e.value.code == 2
    err = _one_line(capsys)
    assert "--scheduler" in err and "needs --backend dask" in err
    assert not (tmp_path / "ds").exists()


# ---------------------------------------------------------------- 8: a fingerprint link loop


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_fingerprint_that_is_a_link_loop_is_called_one(
    small_dataset, tmp_path, cli, capsys, resume
):
    """It was "holds files that are not a dataset of this generator"."""
    root = _copy(small_dataset, tmp_path / "ds")
    fp = root / "checkpoints" / "fingerprint.json"
    fp.unlink()
    fp.symlink_to("fingerprint.json")
    assert cli("--n", 24, "--out", root, "--quiet", *resume) == 2
    assert "fingerprint.json cannot be read (Too many levels of symbolic links)" in _one_line(
        capsys
    )


# ---------------------------------------------------------------- 9: a huge unsealed video


@pytest.mark.timeout(300)
def test_a_huge_sparse_unsealed_video_is_rendered_again_not_read(
    small_dataset, tmp_path, subprocess_cli, digests
):
    """A video after the last manifest was read whole (100 GB, a MemoryError); one larger
    than a sample's video can be is damaged, and rendered again."""
    root = _copy(small_dataset, tmp_path / "ds")
    (root / "checkpoints" / "checkpoint_24.json").unlink()  # samples 20-23: not sealed yet
    (root / "metadata.json").unlink()
    video = Layout(root).video(21)
    with open(video, "r+b") as f:
        f.truncate(100 * 2**30)
    args = ["--n", 24, "--out", root, "--workers", 1, "--checkpoint-every", 10, "--quiet"]
    run = subprocess_cli(*args, "--resume", timeout=240)
    assert run.returncode == 0, run.stderr
    assert digests(root) == digests(small_dataset)


# ---------------------------------------------------------------- 10: a huge label


def _huge_label(root, index: int) -> None:
    with open(Layout(root).label(index), "r+b") as f:
        f.truncate(100 * 2**30)


@pytest.mark.timeout(180)
def test_a_huge_sparse_label_is_one_line_in_validate_and_the_reader(
    small_dataset, tmp_path, subprocess_cli
):
    """A 100 GB label was read whole: validate ended in a MemoryError traceback."""
    from generator.dataformat.dataset import read_metadata
    from generator.dataformat.sources import DatasetError, open_source

    root = _copy(small_dataset, tmp_path / "ds")
    _huge_label(root, 5)
    run = subprocess_cli("validate", root, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    problems = [line for line in run.stdout.splitlines() if line.startswith("       - ")]
    assert len(problems) == 1, run.stdout
    assert (
        "sample_0005.json is damaged: 107374182400 bytes, more than such a file holds"
        in (problems[0])
    )
    with pytest.raises(DatasetError, match="more than such a file holds"):
        open_source(root, read_metadata(root)).read_label(5)


def test_a_huge_sparse_metadata_is_one_line_everywhere_it_is_read(
    small_dataset, tmp_path, subprocess_cli
):
    """A 100 GB metadata.json was read whole: validate (and every reader) a MemoryError."""
    from generator.dataformat.dataset import read_metadata
    from generator.dataformat.sources import DatasetError

    root = _copy(small_dataset, tmp_path / "ds")
    os.truncate(root / "metadata.json", 100 << 30)
    run = subprocess_cli("validate", root, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "metadata.json is damaged: 107374182400 bytes, more than such a file holds" in run.stdout
    with pytest.raises(DatasetError, match="more than such a file holds"):
        read_metadata(root)


@pytest.mark.parametrize("kind", ["manifest", "shard"])
def test_a_name_numbered_with_a_unicode_digit_is_no_file_of_ours(
    small_dataset, small_shard_dataset, tmp_path, subprocess_cli, kind
):
    """``"²".isdigit()`` is True and ``int("²")`` fails: validate, --resume and convert
    were a traceback."""
    if kind == "manifest":
        root = _copy(small_dataset, tmp_path / "ds")
        manifests = root / "checkpoints"
        shutil.copy(manifests / "checkpoint_24.json", manifests / "checkpoint_².json")
        run = subprocess_cli("validate", root, timeout=120)
        assert "Traceback" not in run.stderr and run.returncode in (0, 1), run.stderr
        return
    root = _copy(small_shard_dataset, tmp_path / "ds")  # its last chunk not sealed yet
    (root / "checkpoints" / "checkpoint_12.json").unlink()
    (root / "metadata.json").unlink()
    first = sorted((root / "shards").iterdir())[0]
    shutil.copy(first, first.with_name("shard_²" + "".join(first.suffixes)))
    args = ["--n", 12, "--out", root, "--workers", 1, "--checkpoint-every", 8, "--quiet"]
    run = subprocess_cli(*args, "--format", "shards", "--shard-size", 4, "--resume", timeout=240)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr


@pytest.mark.timeout(300)
def test_a_huge_sparse_manifest_is_one_line_and_resume_renders_its_chunk_again(
    small_dataset, tmp_path, subprocess_cli, digests
):
    """A 100 GB manifest was read whole: a MemoryError traceback in validate and --resume."""
    root = _copy(small_dataset, tmp_path / "ds")
    os.truncate(root / "checkpoints" / "checkpoint_24.json", 100 << 30)
    run = subprocess_cli("validate", root, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    said = "checkpoint_24.json is damaged: 107374182400 bytes, more than such a file holds"
    assert said in run.stdout, run.stdout
    (root / "metadata.json").unlink()
    args = ["--n", 24, "--out", root, "--workers", 1, "--checkpoint-every", 10, "--quiet"]
    run = subprocess_cli(*args, "--resume", timeout=240)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert digests(root) == digests(small_dataset)


def test_the_manifest_bound_is_8_times_the_largest_manifest_of_a_shard_dataset(tmp_path, cli):
    """Shard datasets' manifests are the larger: each line also holds the sample's shard."""
    from generator.dataformat.layout import manifest_limit

    root = tmp_path / "ds"
    args = ["--n", 12, "--out", root, "--format", "shards", "--workers", 1, "--quiet"]
    assert cli(*args, "--checkpoint-every", 12, "--shard-size", 1) == 0
    manifest = root / "checkpoints" / "checkpoint_12.json"
    assert 8 * manifest.stat().st_size <= manifest_limit(manifest) - (64 << 10)


@pytest.mark.timeout(300)
def test_a_huge_sparse_label_sealed_or_not_is_rendered_again_not_read(
    small_dataset, tmp_path, subprocess_cli, digests
):
    root = _copy(small_dataset, tmp_path / "ds")
    (root / "checkpoints" / "checkpoint_24.json").unlink()  # samples 20-23: not sealed yet
    (root / "metadata.json").unlink()
    _huge_label(root, 5)  # sealed: healed
    _huge_label(root, 21)  # unsealed: not kept
    args = ["--n", 24, "--out", root, "--workers", 1, "--checkpoint-every", 10]
    run = subprocess_cli(*args, "--resume", timeout=240)
    assert run.returncode == 0, run.stderr
    assert "repaired 1 checkpointed samples" in run.stderr, run.stderr
    assert digests(root) == digests(small_dataset)


def test_the_label_bound_is_16_times_the_largest_label_of_every_ground_truth_option(tmp_path, cli):
    """The hard level with every ground-truth option, at 128 px: its labels are the largest a
    shipped config makes (masks grow with the image)."""
    from generator.dataformat.dataset import read_metadata
    from generator.dataformat.sources import label_limit

    raw = yaml.safe_load((ROOT / "configs" / "generator" / "hard.yaml").read_text())
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**raw, **GROUND_TRUTH, "image_size": 128, "frames": 32}))
    root = tmp_path / "ds"
    assert cli("--n", 4, "--out", root, "--config", config, "--workers", 1, "--quiet") == 0
    largest = max(p.stat().st_size for p in (root / "labels").iterdir())
    meta = read_metadata(root)
    assert 16 * largest <= label_limit(meta["video_shape"], meta["horizon"])
