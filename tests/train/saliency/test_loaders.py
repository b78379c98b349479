from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from train.saliency.layouts import detect_layout, open_source
from train.saliency.records import LayoutError


def test_mit1003_original_layout(mit1003_dir, truth):
    SIZES, FIX = truth["sizes"], truth["fix"]
    src = open_source(mit1003_dir)
    assert detect_layout(mit1003_dir) == "mit1003-images"
    assert (src.dataset, len(src)) == ("MIT1003", 3)
    for i, (size, pts) in enumerate(zip(SIZES, FIX, strict=True)):
        s = src.load(i)
        assert s.key == f"i{i:03d}_scene.jpeg"
        assert s.image.shape == (*size, 3) and s.image.dtype == np.uint8
        assert {tuple(p) for p in s.fixations.astype(int)} == set(pts)
        assert s.fixation_map is not None and s.fixation_map.shape == size


def test_mit1003_points_in_allfixations_folder(mit1003_dir, truth):
    FIX = truth["fix"]
    (mit1003_dir / "ALLFIXATIONS").mkdir()
    for p in (mit1003_dir / "ALLFIXATIONMAPS").glob("*_fixPts.jpg"):
        p.rename(mit1003_dir / "ALLFIXATIONS" / p.name)
    s = open_source(mit1003_dir).load(1)
    assert {tuple(p) for p in s.fixations.astype(int)} == set(FIX[1])


def test_cat2000_original_layout_from_parent_or_trainset(cat2000_dir, truth):
    SIZES, FIX = truth["sizes"], truth["fix"]
    for root in (cat2000_dir, cat2000_dir / "trainSet"):
        src = open_source(root)
        assert detect_layout(root) == "cat2000-images"
        assert [r.key for r in src.refs] == ["Action/001.jpg", "Action/002.jpg", "Indoor/001.jpg"]
        assert src.categories() == ["Action", "Indoor"]
        s = src.load(2)
        assert s.category == "Indoor" and s.image.shape == (*SIZES[2], 3)
        assert {tuple(p) for p in s.fixations.astype(int)} == set(FIX[2])


@pytest.mark.parametrize(
    "fixations", ["FixationTrains-1.2", "FixationTrains-1.3", "Fixations", "ScanpathFixations"]
)
def test_pysaliency_hdf5_fixation_types(tmp_path, fixations, pysaliency_writer, truth):
    SIZES, EXPECTED_HDF5_FIX = truth["sizes"], truth["hdf5_fix"]
    root = pysaliency_writer(tmp_path / "ds", fixations=fixations)
    src = open_source(root)
    assert detect_layout(root) == "hdf5" and src.dataset == "CAT2000"
    assert [r.category for r in src.refs] == ["Action", "Action", "Indoor"]
    for i, expected in EXPECTED_HDF5_FIX.items():
        s = src.load(i)
        assert {tuple(p) for p in s.fixations} == expected
        assert s.image.shape == (*SIZES[i], 3)
        assert s.fixation_map is None


def test_pysaliency_embedded_stimuli(tmp_path, pysaliency_writer, truth):
    SIZES, EXPECTED_HDF5_FIX = truth["sizes"], truth["hdf5_fix"]
    root = pysaliency_writer(tmp_path / "ds", embedded=True)
    src = open_source(root)
    s = src.load(1)
    assert s.image.shape == (*SIZES[1], 3)
    assert s.category == "category_00"
    assert {tuple(p) for p in s.fixations} == EXPECTED_HDF5_FIX[1]


def test_file_stimuli_pixels_match_the_files(hdf5_dir):
    s = open_source(hdf5_dir).load(0)
    direct = np.asarray(Image.open(hdf5_dir / "Stimuli/Action/001.jpg"))
    assert np.array_equal(s.image, direct)


def test_unknown_folder_names_what_was_expected(tmp_path: Path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(LayoutError) as err:
        detect_layout(tmp_path)
    msg = str(err.value)
    assert "ALLSTIMULI" in msg and "Stimuli/<category>" in msg and "stimuli.hdf5" in msg
    assert "\n" not in msg


def test_half_an_hdf5_export_is_an_error(tmp_path: Path, pysaliency_writer):
    root = pysaliency_writer(tmp_path / "ds")
    (root / "fixations.hdf5").unlink()
    with pytest.raises(LayoutError, match="fixations.hdf5 missing"):
        open_source(root)
