import errno
import os

import numpy as np
import pytest

from train.saliency.convert import compare, main
from train.saliency.layouts import detect_layout, open_source


@pytest.mark.parametrize("fixture", ["mit1003_dir", "cat2000_dir"])
def test_images_to_hdf5_and_back_is_lossless(request, tmp_path, fixture):
    src_dir = request.getfixturevalue(fixture)
    h5, back = tmp_path / "h5", tmp_path / "back"
    assert main([str(src_dir), str(h5), "--to", "hdf5", "--quiet"]) == 0
    assert detect_layout(h5) == "hdf5"
    assert main([str(h5), str(back), "--to", "images", "--quiet"]) == 0
    a, b, c = open_source(src_dir), open_source(h5), open_source(back)
    assert a.dataset == b.dataset == c.dataset
    assert compare(a, b) == [] and compare(a, c) == []
    for i in range(len(a)):
        sa, sb, sc = a.load(i), b.load(i), c.load(i)
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.image, sc.image)
        assert np.array_equal(sa.fixations, sb.fixations)
        assert np.array_equal(sa.fixation_map, sb.fixation_map)
        assert np.array_equal(sa.fixation_map, sc.fixation_map)


def test_pysaliency_export_to_images(hdf5_dir, tmp_path, truth):
    out = tmp_path / "images"
    assert main([str(hdf5_dir), str(out), "--to", "images", "--quiet"]) == 0
    src = open_source(out)
    assert detect_layout(out) == "cat2000-images"
    assert src.categories() == ["Action", "Indoor"]
    s = src.load(0)
    # the image layout stores fixations as a pixel mask: sub-pixel 5.2, 7.4 becomes 5, 7
    assert {tuple(p) for p in s.fixations.astype(int)} == {(5, 7), (20, 10), (33, 25)}
    assert s.fixation_map is not None and abs(s.fixation_map.max() - 1.0) < 0.01


def test_compare_reports_a_changed_fixation(mit1003_dir, tmp_path):
    h5 = tmp_path / "h5"
    assert main([str(mit1003_dir), str(h5), "--to", "hdf5", "--quiet"]) == 0
    import h5py

    with h5py.File(h5 / "fixations.hdf5", "r+") as f:
        f["train_xs"][0, 0] = f["train_xs"][0, 0] + 3
    problems = compare(open_source(mit1003_dir), open_source(h5))
    assert len(problems) == 1 and "fixation points differ" in problems[0]


def test_cli_errors_are_one_line_exit_2(tmp_path, mit1003_dir, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path / "out"), "--to", "hdf5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main([str(mit1003_dir), str(tmp_path / "full"), "--to", "hdf5"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert main([str(mit1003_dir), str(tmp_path / "o"), "--to", "images"]) == 2
    assert "already in images layout" in capsys.readouterr().err


def test_hdf5_export_follows_pysaliency_schema(mit1003_dir, tmp_path):
    """The attributes and datasets pysaliency's read_hdf5 requires (FileStimuli 2.1,
    FixationTrains 1.2); checked once against pysaliency 0.2.22's own reader as well."""
    import h5py

    h5 = tmp_path / "h5"
    assert main([str(mit1003_dir), str(h5), "--to", "hdf5", "--quiet"]) == 0
    with h5py.File(h5 / "stimuli.hdf5") as f:
        assert (f.attrs["type"], f.attrs["version"], f.attrs["size"]) == (b"FileStimuli", b"2.1", 3)
        assert f["filenames"][0].decode() == "stimuli/i000_scene.jpeg"
        assert list(f["shapes"][1]) == [36, 24, 3]
        assert f.attrs["__attributes__"] == b"[]"
    with h5py.File(h5 / "fixations.hdf5") as f:
        assert (f.attrs["type"], f.attrs["version"]) == (b"FixationTrains", b"1.2")
        for k in ("train_xs", "train_ys", "train_ts", "train_ns", "train_subjects"):
            assert f[k].shape[0] == 3, k
        assert np.isnan(f["train_xs"][1, 2]) and not np.isnan(f["train_xs"][2, 3])
        assert f["scanpath_attributes"].attrs["__attributes__"] == b"[]"
        assert f.attrs["scanpath_attribute_mapping"] == b"{}"


def test_a_second_convert_into_the_same_folder_is_refused(tmp_path, mit1003_dir, capsys):
    """Both saw an empty folder and both wrote into it; now the second is one line, exit 2."""
    from trajkit.lock import new_folder

    out = tmp_path / "h5"
    out.mkdir()
    with new_folder(out):  # the first convert, mid-copy
        assert main([str(mit1003_dir), str(out), "--to", "hdf5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is being written by process" in err, err
    assert list(out.iterdir()) == []
    assert main([str(mit1003_dir), str(out), "--to", "hdf5", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "fixation_maps", "fixations.hdf5", "stimuli", "stimuli.hdf5"
    ]  # fmt: skip


def test_a_refused_folder_keeps_another_tools_lock_file(tmp_path, mit1003_dir, capsys):
    out = tmp_path / "dataset"
    out.mkdir()
    (out / ".lock").write_text('{"pid": 1}')
    (out / "metadata.json").write_text("{}")
    assert main([str(mit1003_dir), str(out), "--to", "hdf5", "--quiet"]) == 2
    assert "is not empty" in capsys.readouterr().err  # nor emptied
    assert (out / ".lock").read_text() == '{"pid": 1}'
    assert (out / "metadata.json").read_text() == "{}"


@pytest.mark.parametrize("given", [True, False], ids=["given empty folder", "new folder"])
@pytest.mark.parametrize(
    ("stop", "code", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "x.hdf5"), 1, "No space left"),
        (KeyboardInterrupt(), 130, "interrupted: nothing of"),  # Ctrl-C, or SIGTERM
    ],
    ids=["full disk", "stopped"],
)
def test_a_copy_cut_short_leaves_no_half_copy(
    tmp_path, mit1003_dir, capsys, monkeypatch, stop, code, said, given
):
    """Before, a SIGTERM left a half copy that a later run refused as "not empty"."""
    import train.saliency.convert as module

    def half_then_stop(src, dst, to, quiet=True):
        (dst / "stimuli.hdf5").write_bytes(b"half")
        raise stop

    monkeypatch.setattr(module, "convert", half_then_stop)
    out = tmp_path / "out"
    if given:
        out.mkdir()
    assert main([str(mit1003_dir), str(out), "--to", "hdf5", "--quiet"]) == code
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1 and "[Errno" not in err, err
    kept = [p.name for p in out.iterdir()] if out.exists() else None
    assert kept == ([] if given else None)
    assert not list(tmp_path.glob(".tmp-*"))  # nor its temporary


def test_a_synthetic_set_on_a_full_disk_is_one_line_and_leaves_nothing(
    tmp_path, capsys, monkeypatch
):
    """It printed Python's "[Errno 28] No space left on device: '...'"."""
    import train.saliency.synthetic as synthetic

    real = synthetic.write_sample

    def full_at_third(dst, sample, density):
        if sample.key == "synthetic_0002.jpeg":
            raise OSError(errno.ENOSPC, "No space left on device", str(dst / sample.key))
        real(dst, sample, density)

    monkeypatch.setattr(synthetic, "write_sample", full_at_third)
    out = tmp_path / "syn"
    assert synthetic.main([str(out), "--n", "5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot write {out}: No space left on device: "), err
    assert "synthetic_0002.jpeg" in err and "[Errno" not in err and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_a_synthetic_set_cut_short_leaves_nothing(tmp_path, capsys, monkeypatch):
    """Before, SIGTERM left the stimuli written so far, a smaller set that verified clean."""
    import train.saliency.synthetic as synthetic

    real = synthetic.write_sample

    def stop_at_third(dst, sample, density):
        if sample.key == "synthetic_0002.jpeg":
            raise KeyboardInterrupt
        real(dst, sample, density)

    monkeypatch.setattr(synthetic, "write_sample", stop_at_third)
    out = tmp_path / "syn" / "MIT1003"
    assert synthetic.main([str(out), "--n", "5"]) == 130
    assert "interrupted: nothing of" in capsys.readouterr().err and not out.exists()
