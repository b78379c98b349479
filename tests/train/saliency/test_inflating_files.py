"""Files that inflate far past what they stand for are refused in one line before they are
inflated: CAT2000 MAT-files, MIT1003 and CAT2000 fixation images, pysaliency HDF5 datasets.
Each forged file here inflates to 8 MB or more (an LZF one is refused for its filter, which no
check bounds); verify and convert of its set may trace no more than ``SMALL``."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat
from scipy.sparse import csc_matrix

from train.saliency.cat2000 import LOCS_VARIABLE, Cat2000Images
from train.saliency.convert import main as convert
from train.saliency.layouts import open_source
from train.saliency.verify import main as verify

SMALL = 2_000_000  # bytes traced by verify or convert of the whole set, the hostile file included
BIG = 8_000_000
MAT5_HEADER = b"MATLAB 5.0 MAT-file".ljust(116) + bytes(8) + struct.pack("<H2s", 0x0100, b"IM")


def element(kind: int, data: bytes) -> bytes:
    """A MAT-5 data element: tag, data, padding to 8 bytes."""
    return struct.pack("<II", kind, len(data)) + data + bytes(-len(data) % 8)


def matrix(mclass: int, dims: tuple[int, int], name: str, *data: bytes, nzmax: int = 0) -> bytes:
    """A MAT-5 miMATRIX (class ``mclass``: 5 sparse, 6 double, 9 uint8), zlib-compressed as
    MATLAB saves it."""
    payload = element(6, struct.pack("<II", mclass, nzmax)) + element(5, struct.pack("<ii", *dims))
    payload += element(1, name.encode()) + b"".join(data)
    inflated = struct.pack("<II", 14, len(payload)) + payload
    compressed = zlib.compress(inflated, 9)
    return struct.pack("<II", 15, len(compressed)) + compressed


def outgrown_dense(path: Path) -> None:
    """A uint8 fixLocs that says 30x40 and holds 8 MB (scipy reads it all, then fails to
    reshape it)."""
    path.write_bytes(MAT5_HEADER + matrix(9, (30, 40), LOCS_VARIABLE, element(2, bytes(BIG))))


def duplicated_sparse(path: Path) -> None:
    """A sparse 30x40 fixLocs holding one fixation a million times over (12 MB)."""
    n = 1_000_000
    rows, columns = element(5, bytes(4 * n)), element(5, struct.pack("<41i", 0, *[n] * 40))
    data = element(9, np.ones(n).tobytes())
    path.write_bytes(MAT5_HEADER + matrix(5, (30, 40), LOCS_VARIABLE, rows, columns, data, nzmax=n))


def long_name_beside(path: Path) -> None:
    """The honest fixLocs, and beside it a variable whose name is 8 MB (whosmat inflates it)."""
    with path.open("ab") as f:
        f.write(matrix(6, (1, 1), "a" * BIG, element(9, struct.pack("<d", 1.0))))


def traced_peak(command) -> tuple[int, int]:
    """``command()`` and the most memory tracemalloc saw it hold (numpy, bytes, Python)."""
    tracemalloc.start()
    try:
        return command(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def refused_in_one_line(root: Path, to: str, tmp_path: Path, capsys, expected: str) -> None:
    """verify and convert ``--to to`` of ``root`` each print ``expected`` alone, exit 1, trace
    no more than SMALL, and convert leaves no folder."""
    capsys.readouterr()
    dst = tmp_path / "converted"
    for command in (
        lambda: verify([str(root), "--quiet"]),
        lambda: convert([str(root), str(dst), "--to", to, "--quiet"]),
    ):
        code, peak = traced_peak(command)
        err = capsys.readouterr().err
        assert (code, err) == (1, f"error: {expected}\n"), err[:500]
        assert peak < SMALL, f"{peak:,} bytes traced"
    assert not dst.exists()


@pytest.mark.parametrize("forge", [outgrown_dense, duplicated_sparse, long_name_beside])
def test_a_cat2000_fixlocs_that_inflates_is_refused_before_it_is_inflated(
    cat2000_dir, tmp_path, capsys, forge
):
    """Before: the outgrown matrix was inflated whole and failed to reshape (a 389 KB file of a
    1080x1920 stimulus took 716 MB); the sparse one (a 311 KB file took 469 MB) and the long
    name (a 292 KB file took 711 MB) passed, exit 0."""
    victim = cat2000_dir / "trainSet" / "FIXATIONLOCS" / "Action" / "001.mat"  # a 30x40 stimulus
    forge(victim)
    assert victim.stat().st_size < 100_000
    refused_in_one_line(
        cat2000_dir,
        "hdf5",
        tmp_path,
        capsys,
        f"{victim}: a variable in it takes more than 94,336 bytes, more than a 'fixLocs' of a "
        "30x40 stimulus can; the file is damaged or forged",
    )


def test_a_cat2000_fixlocs_of_a_damaged_zlib_stream_is_one_line(cat2000_dir, capsys):
    """Before: zlib.error traceback from whosmat."""
    victim = cat2000_dir / "trainSet" / "FIXATIONLOCS" / "Action" / "001.mat"
    savemat(victim, {LOCS_VARIABLE: np.ones((30, 40))}, do_compression=True)
    data = bytearray(victim.read_bytes())
    data[138:170] = b"\xff" * 32  # inside the zlib stream, after its two-byte header
    victim.write_bytes(bytes(data))
    assert verify([str(cat2000_dir), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(
            f"error: {victim}: not a MATLAB file with a 'fixLocs' matrix (Error -3 while "
            "decompressing data"
        )
        and err.count("\n") == 1
    ), err


def dense(locs: np.ndarray) -> dict:
    return {LOCS_VARIABLE: locs.astype(float)}


@pytest.mark.parametrize(
    ("variables", "options"),
    [
        (dense, {"do_compression": True}),
        (lambda locs: {LOCS_VARIABLE: csc_matrix(locs.astype(float))}, {"do_compression": True}),
        (lambda locs: {LOCS_VARIABLE: csc_matrix(locs > 0)}, {"do_compression": True}),
        (lambda locs: {LOCS_VARIABLE: locs.astype(np.uint8)}, {}),
        (dense, {"format": "4"}),
        (lambda locs: {**dense(locs), "imageName": "001.jpg"}, {"do_compression": True}),
    ],
    ids=["compressed", "sparse", "logical-sparse", "uint8", "mat4", "two-variables"],
)
def test_honest_cat2000_fixlocs_read_as_before(cat2000_dir, truth, variables, options):
    """The check refuses no way MATLAB or scipy stores a fixation matrix."""
    locs_dir = cat2000_dir / "trainSet" / "FIXATIONLOCS"
    for path, size, points in zip(
        sorted(locs_dir.rglob("*.mat")), truth["sizes"], truth["fix"], strict=True
    ):
        locs = np.zeros(size)
        for x, y in points:
            locs[y, x] = 1
        savemat(path, variables(locs), **options)
    src = Cat2000Images(cat2000_dir)
    for i, points in enumerate(truth["fix"]):
        assert sorted(map(tuple, src.load(i).fixations.tolist())) == sorted(
            (float(x), float(y)) for x, y in points
        )


@pytest.mark.parametrize("name", ["i000_scene_fixPts.jpg", "i000_scene_fixMap.jpg"])
def test_a_fixation_image_of_another_size_is_refused_before_it_is_decoded(
    mit1003_dir, tmp_path, capsys, name
):
    """Before, the same line came after decoding it: a 1 MB 9400x9400 JPEG map took 837 MB
    (as float64), a mask 405 MB. CAT2000's and pysaliency's maps are read alike."""
    victim = mit1003_dir / "ALLFIXATIONMAPS" / name  # of a 30x40 stimulus
    Image.new("L", (2000, 2000)).save(victim, quality=1)
    refused_in_one_line(
        mit1003_dir,
        "hdf5",
        tmp_path,
        capsys,
        f"{victim} is 2000x2000 but its stimulus is 30x40; a fixation map must match its "
        "stimulus's size",
    )


def never_written_trains(root: Path) -> str:
    """train_xs and train_ys declared 2000x2000 (32 MB each), never written: 0 bytes stored."""
    with h5py.File(root / "fixations.hdf5", "r+") as f:
        for name in ("train_xs", "train_ys"):
            del f[name]
            f.create_dataset(name, (2000, 2000), np.float64, chunks=(100, 100))
    return (
        f"{root / 'fixations.hdf5'}: train_xs declares 32,000,000 bytes but the file stores 0 "
        "for it; compressed or never written, it could unpack to any size (pysaliency writes "
        "it uncompressed)"
    )


def one_name_many_times(root: Path) -> str:
    """filenames whose 200 items all point at one 64 KB string in the file's heap (13 MB)."""
    path = root / "stimuli.hdf5"
    with h5py.File(path, "r+") as f:
        del f["filenames"]
        names = np.array([b"x" * (1 << 16)] + [b"a"] * 199, dtype=object)
        data = f.create_dataset("filenames", data=names, dtype=h5py.string_dtype())
        offset = data.id.get_offset()
    raw = bytearray(path.read_bytes())
    raw[offset + 16 : offset + 16 * 200] = raw[offset : offset + 16] * 199
    path.write_bytes(bytes(raw))
    return (
        f"{path}: the items of filenames are longer together than the file holding them; "
        "the file is damaged or forged"
    )


def inflating_chunk(root: Path) -> str:
    """Stimulus 0 (30x40x3) in one gzip chunk whose stream inflates to 8 MB."""
    with h5py.File(root / "stimuli.hdf5", "r+") as f:
        del f["0"]
        data = f.create_dataset("0", (30, 40, 3), np.uint8, chunks=(30, 40, 3), compression="gzip")
        data.id.write_direct_chunk((0, 0, 0), zlib.compress(bytes(BIG), 9))
    return (
        f"{root / 'stimuli.hdf5'}: stimulus 0 holds a compressed chunk that inflates past the "
        "chunk's 3,604 bytes; the file is damaged or forged"
    )


def partly_written_stimulus(root: Path) -> str:
    """Stimulus 0 declared 2000x2000x3 (12 MB) in gzip chunks, one of 16 written: the others
    read as zeros."""
    with h5py.File(root / "stimuli.hdf5", "r+") as f:
        del f["0"]
        data = f.create_dataset(
            "0", (2000, 2000, 3), np.uint8, chunks=(500, 500, 3), compression="gzip"
        )
        data[:500, :500] = 1
    return (
        f"{root / 'stimuli.hdf5'}: stimulus 0 is 2000x2000x3 but the file stores only part of "
        "it (the rest, never written, reads as zeros); the file is damaged or forged"
    )


def never_written_stimulus(root: Path) -> str:
    """Stimulus 0 declared 2000x2000x3 (12 MB) in one block, never written: 0 bytes stored."""
    with h5py.File(root / "stimuli.hdf5", "r+") as f:
        del f["0"]
        f.create_dataset("0", (2000, 2000, 3), np.uint8)
    return (
        f"{root / 'stimuli.hdf5'}: stimulus 0 is 2000x2000x3 but the file stores only part of "
        "it (the rest, never written, reads as zeros); the file is damaged or forged"
    )


def lzf_stimulus(root: Path) -> str:
    """Stimulus 0 through LZF, whose output HDF5 grows to whatever the stream holds."""
    with h5py.File(root / "stimuli.hdf5", "r+") as f:
        image = f["0"][...]
        del f["0"]
        f.create_dataset("0", data=image, compression="lzf")
    return (
        f"{root / 'stimuli.hdf5'}: stimulus 0 is stored through HDF5 filter 32000, whose "
        "output is not bounded before it is read; pysaliency writes gzip (h5repack -f GZIP=9 "
        "does too)"
    )


@pytest.mark.parametrize(
    "forge",
    [
        never_written_trains,
        one_name_many_times,
        inflating_chunk,
        partly_written_stimulus,
        never_written_stimulus,
        lzf_stimulus,
    ],
)
def test_a_pysaliency_dataset_that_inflates_is_refused_before_it_is_read(
    pysaliency_writer, tmp_path, capsys, forge
):
    """Before: a 6 KB fixations.hdf5 declaring 10000x10000 trains took 1.7 GB and verify said
    fixations were missing; 600 names pointing at one 1 MB string took 1.3 GB and printed it
    twice in one line; a 400 KB stimuli.hdf5 whose chunk inflated to 400 MB took 463 MB and
    passed, as did any LZF stimulus; a 13 KB one declaring a 9000x9000 image, never written,
    took 243 MB of zeros and passed."""
    embedded = forge in (
        inflating_chunk,
        partly_written_stimulus,
        never_written_stimulus,
        lzf_stimulus,
    )
    root = pysaliency_writer(tmp_path / "hdf5", embedded=embedded)
    expected = forge(root)
    refused_in_one_line(root, "images", tmp_path, capsys, expected)


def test_honest_compressed_hdf5_stimuli_read_as_before(pysaliency_writer, tmp_path):
    """pysaliency writes its Stimuli gzip-compressed; shuffle and Fletcher-32 are bounded too."""
    root = pysaliency_writer(tmp_path / "hdf5", embedded=True)
    before = [open_source(root).load(i).image for i in range(3)]
    with h5py.File(root / "stimuli.hdf5", "r+") as f:
        for i, image in enumerate(before):
            del f[str(i)]
            f.create_dataset(
                str(i),
                data=image,
                compression="gzip",
                compression_opts=9,
                shuffle=True,
                fletcher32=True,
                chunks=(8, 8, 3),
            )
    src = open_source(root)
    assert all(np.array_equal(src.load(i).image, image) for i, image in enumerate(before))
