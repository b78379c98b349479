"""Small datasets written the way the real ones are, independently of our writers."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

SIZES = [(30, 40), (36, 24), (28, 28)]
FIX = [  # (x, y) pixel fixations per stimulus
    [(5, 7), (20, 10), (33, 25)],
    [(3, 3), (12, 30)],
    [(14, 14), (1, 26), (27, 0), (10, 10)],
]


def _image(rng: np.random.Generator, size) -> np.ndarray:
    return rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)


def _mask(size, pts) -> np.ndarray:
    m = np.zeros(size, dtype=np.uint8)
    for x, y in pts:
        m[y, x] = 255
    return m


@pytest.fixture
def mit1003_dir(tmp_path: Path) -> Path:
    """ALLSTIMULI/*.jpeg, ALLFIXATIONMAPS/*_fixMap.jpg and *_fixPts.jpg as in the download."""
    root = tmp_path / "MIT1003"
    (root / "ALLSTIMULI").mkdir(parents=True)
    (root / "ALLFIXATIONMAPS").mkdir()
    rng = np.random.default_rng(0)
    for i, (size, pts) in enumerate(zip(SIZES, FIX, strict=True)):
        stem = f"i{i:03d}_scene"
        Image.fromarray(_image(rng, size)).save(root / "ALLSTIMULI" / f"{stem}.jpeg")
        Image.fromarray(_mask(size, pts)).save(
            root / "ALLFIXATIONMAPS" / f"{stem}_fixPts.jpg", quality=100, subsampling=0
        )
        fmap = (rng.random(size) * 255).astype(np.uint8)
        Image.fromarray(fmap).save(root / "ALLFIXATIONMAPS" / f"{stem}_fixMap.jpg")
    return root


@pytest.fixture
def cat2000_dir(tmp_path: Path) -> Path:
    """trainSet/Stimuli/<cat>/*.jpg, FIXATIONMAPS/<cat>/*.jpg, FIXATIONLOCS/<cat>/*.mat (fixLocs)."""
    root = tmp_path / "CAT2000"
    base = root / "trainSet"
    rng = np.random.default_rng(1)
    items = [("Action", "001"), ("Action", "002"), ("Indoor", "001")]
    for (cat, n), size, pts in zip(items, SIZES, FIX, strict=True):
        for d in ("Stimuli", "FIXATIONMAPS", "FIXATIONLOCS"):
            (base / d / cat).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(rng, size)).save(base / "Stimuli" / cat / f"{n}.jpg")
        Image.fromarray((rng.random(size) * 255).astype(np.uint8)).save(
            base / "FIXATIONMAPS" / cat / f"{n}.jpg"
        )
        savemat(
            base / "FIXATIONLOCS" / cat / f"{n}.mat",
            {"fixLocs": (_mask(size, pts) > 0).astype(float)},
        )
    (base / "Stimuli" / "Action" / "Output").mkdir()
    return root


def write_pysaliency(
    root: Path, *, embedded: bool = False, fixations: str = "FixationTrains-1.2"
) -> Path:
    """The files pysaliency's to_hdf5 writes (stimuli.hdf5 + fixations.hdf5) for a CAT2000-like set."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    names = ["Stimuli/Action/001.jpg", "Stimuli/Action/002.jpg", "Stimuli/Indoor/001.jpg"]
    images = [_image(rng, s) for s in SIZES]
    with h5py.File(root / "stimuli.hdf5", "w") as f:
        if embedded:
            f.attrs["type"] = np.bytes_("Stimuli")
            f.attrs["version"] = np.bytes_("1.1")
            for i, img in enumerate(images):
                f.create_dataset(str(i), data=img)
        else:
            f.attrs["type"] = np.bytes_("FileStimuli")
            f.attrs["version"] = np.bytes_("2.1")
            for name, img in zip(names, images, strict=True):
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / name, quality=95)
            f.create_dataset(
                "filenames",
                data=np.array([n.encode() for n in names]),
                dtype=h5py.special_dtype(vlen=str),
            )
            ds = f.create_dataset("shapes", (3,), dtype=h5py.special_dtype(vlen=np.dtype("int64")))
            for i, img in enumerate(images):
                ds[i] = np.array(img.shape)
        f.create_dataset("category", data=np.array([0, 0, 1]))
        f.attrs["__attributes__"] = np.bytes_(json.dumps(["category"]))
        f.attrs["size"] = 3
    # two trains on stimulus 0 (sub-pixel), one on each other stimulus
    trains = [
        (0, [(5.2, 7.4), (20.0, 10.0)]),
        (2, [(14.0, 14.0)]),
        (0, [(33.0, 25.0)]),
        (1, [(3.0, 3.0), (12.0, 30.0)]),
    ]
    with h5py.File(root / "fixations.hdf5", "w") as f:
        if fixations.startswith("FixationTrains"):
            longest = max(len(t) for _, t in trains)
            xs = np.full((len(trains), longest), np.nan)
            ys = xs.copy()
            for i, (_, pts) in enumerate(trains):
                xs[i, : len(pts)] = [p[0] for p in pts]
                ys[i, : len(pts)] = [p[1] for p in pts]
            f.attrs["type"] = np.bytes_("FixationTrains")
            f.attrs["version"] = np.bytes_(fixations.split("-")[1])
            f.create_dataset("train_xs", data=xs)
            f.create_dataset("train_ys", data=ys)
            f.create_dataset("train_ts", data=np.where(np.isnan(xs), np.nan, 0.0))
            f.create_dataset("train_ns", data=np.array([n for n, _ in trains]))
            f.create_dataset("train_subjects", data=np.arange(len(trains)))
            if fixations.endswith("1.3"):
                f.create_dataset("train_lengths", data=np.array([len(t) for _, t in trains]))
            f.attrs["__attributes__"] = np.bytes_("[]")
            f.attrs["scanpath_attribute_mapping"] = np.bytes_("{}")
            for g in ("scanpath_attributes", "scanpath_fixation_attributes"):
                f.create_group(g).attrs["__attributes__"] = np.bytes_("[]")
        elif fixations == "Fixations":
            flat = [(n, p) for n, pts in trains for p in pts]
            f.attrs["type"] = np.bytes_("Fixations")
            f.attrs["version"] = np.bytes_("1.2")
            f.create_dataset("x", data=np.array([p[0] for _, p in flat]))
            f.create_dataset("y", data=np.array([p[1] for _, p in flat]))
            f.create_dataset("t", data=np.zeros(len(flat)))
            f.create_dataset("n", data=np.array([n for n, _ in flat]))
            f.create_dataset("subject", data=np.zeros(len(flat), dtype=int))
            f.attrs["__attributes__"] = np.bytes_(json.dumps(["subject"]))
        elif fixations == "ScanpathFixations":
            f.attrs["type"] = np.bytes_("ScanpathFixations")
            f.attrs["version"] = np.bytes_("1.0")
            g = f.create_group("scanpaths")
            g.attrs["type"] = np.bytes_("Scanpaths")
            g.attrs["version"] = np.bytes_("1.0")
            longest = max(len(t) for _, t in trains)
            xs = np.full((len(trains), longest), np.nan)
            ys = xs.copy()
            for i, (_, pts) in enumerate(trains):
                xs[i, : len(pts)] = [p[0] for p in pts]
                ys[i, : len(pts)] = [p[1] for p in pts]
            g.create_dataset("xs", data=xs)
            g.create_dataset("ys", data=ys)
            g.create_dataset("n", data=np.array([n for n, _ in trains]))
            g.create_dataset("lengths", data=np.array([len(t) for _, t in trains]))
    return root


EXPECTED_HDF5_FIX = {
    0: {(5.2, 7.4), (20.0, 10.0), (33.0, 25.0)},
    1: {(3.0, 3.0), (12.0, 30.0)},
    2: {(14.0, 14.0)},
}


@pytest.fixture
def hdf5_dir(tmp_path: Path) -> Path:
    return write_pysaliency(tmp_path / "CAT2000_hdf5")


@pytest.fixture
def pysaliency_writer():
    """The builder itself, for tests that need a variant (embedded stimuli, other fixation types)."""
    return write_pysaliency


@pytest.fixture
def truth() -> dict:
    return {"sizes": SIZES, "fix": FIX, "hdf5_fix": EXPECTED_HDF5_FIX}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """30 synthetic stimuli in the MIT1003 layout (train.saliency.synthetic)."""
    from train.saliency.synthetic import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("synth") / "MIT1003", 30, seed=1)


@pytest.fixture
def tiny_config(tmp_path: Path):
    """``make(variant, data, **train)``: the shipped ``<variant>_tiny.yaml`` shrunk for tests."""
    import yaml

    configs = Path(__file__).resolve().parents[3] / "configs" / "saliency"

    def make(variant: str, data: Path, **train) -> Path:
        raw = yaml.safe_load((configs / f"{variant}_tiny.yaml").read_text())
        raw["data"].update(
            path=str(data),
            image_size=24,
            val_fraction=0.2,
            test_fraction=0.1,
            max_train_stimuli=16,
            max_val_stimuli=6,
        )
        raw["model"]["width"] = 8
        raw["train"].update({"epochs": 2, "batch_size": 8, "threads": 1, **train})
        path = tmp_path / f"{variant}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return make
