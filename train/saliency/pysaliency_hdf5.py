"""The HDF5 files pysaliency exports (``stimuli.hdf5`` and ``fixations.hdf5``).

Schemas as written by pysaliency's ``to_hdf5`` methods (github.com/matthias-k/pysaliency,
``pysaliency/datasets/stimuli.py``, ``fixations.py``, ``scanpaths.py``); the type and
version are string attributes on the file's root group:

* ``Stimuli`` 1.0/1.1: one dataset per stimulus named ``"0"``, ``"1"``, ...; attr ``size``.
* ``FileStimuli`` 1.0/2.0/2.1: ``filenames`` (vlen str; relative to the HDF5 file's folder
  from 2.0 on), ``shapes`` (vlen int64); attr ``size``.
  From 1.1 (Stimuli) / 2.1 (FileStimuli), attr ``__attributes__`` is a JSON list of
  per-stimulus datasets, e.g. ``category`` (CAT2000's category index).
* ``FixationTrains`` 1.0-1.3: ``train_xs``, ``train_ys``, ``train_ts`` (NaN-padded,
  trains x longest), ``train_ns``, ``train_subjects``; ``train_lengths`` from 1.3; attrs
  ``__attributes__``, ``scanpath_attribute_mapping`` and groups ``scanpath_attributes``,
  ``scanpath_fixation_attributes`` (each with ``__attributes__``) from 1.1/1.2.
* ``Fixations`` 1.0-1.2: flat ``x``, ``y``, ``t``, ``n`` (+ histories, ``subject``).
* ``ScanpathFixations`` 1.0: group ``scanpaths`` (type ``Scanpaths``) with ``xs``, ``ys``
  (NaN-padded), ``n``, ``lengths``.

pysaliency keeps no fixation maps; ``convert`` stores shipped maps beside the files in
``fixation_maps/<stimulus key>`` so a round trip loses nothing. Without them a map is
derived from the fixations where one is needed.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from train.saliency.image_files import inflates_past, read_image, read_map
from train.saliency.records import (
    LayoutError,
    SaliencySource,
    Sample,
    StimulusFileError,
    StimulusRef,
    as_rgb,
    regular_file,
)
from trajkit.cli import first_line, short_repr
from trajkit.files import write_atomic

STIMULI_FILE = "stimuli.hdf5"
FIXATIONS_FILE = "fixations.hdf5"
MAPS_DIR = "fixation_maps"
WHERE = "pysaliency.get_mit1003(location=...) or pysaliency.get_cat2000_train(location=...)"
# How much more than the file stores for it a dataset read whole may declare: pysaliency
# writes them uncompressed; a small one may be compressed or kept in the file's header.
STORED_HEADROOM = 1 << 20
FLETCHER32_BYTES = 4  # the checksum a chunk may carry beyond its data


def _h5py():
    """h5py, an optional extra: only this layout needs it, so its absence is one line."""
    try:
        import h5py
    except ImportError:
        raise LayoutError(
            "the pysaliency HDF5 layout needs h5py: pip install 'trajectory-suite[hdf5]'"
        ) from None
    return h5py


def looks_like(root: Path) -> bool:
    return (root / STIMULI_FILE).is_file() or (root / FIXATIONS_FILE).is_file()


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _lists_category(group) -> bool:
    """Whether ``__attributes__`` lists ``category``, the one per-stimulus dataset used here:
    the others, named by the file, were read whole for nothing (and a 60 KB name was
    quoted whole in the error of a missing one)."""
    raw = group.attrs.get("__attributes__")
    return raw is not None and "category" in list(json.loads(_text(raw)))


def _type_version(f, path: Path) -> tuple[str, str]:
    if "type" not in f.attrs or "version" not in f.attrs:
        raise LayoutError(f"{path}: no 'type'/'version' attributes; not a pysaliency export")
    return _text(f.attrs["type"]), _text(f.attrs["version"])


def key_from_filename(name: str) -> str:
    """``Stimuli/Action/001.jpg`` -> ``Action/001.jpg``; ``stimuli/x.jpeg`` -> ``x.jpeg``."""
    parts = Path(name).parts
    return "/".join(parts[1:]) if len(parts) > 1 else parts[0]


def names_relative(version: str, path: Path) -> bool:
    """Whether a FileStimuli file of ``version`` names its files relative to its folder (from
    2.0 on). Compared as numbers: as text, "10.0" came before "2.0"."""
    try:
        return int(version.split(".")[0]) >= 2
    except ValueError:
        raise LayoutError(
            f"{path}: version {short_repr(version)} is not a pysaliency version"
        ) from None


def stimulus_file(path: Path, name: str, relative: bool) -> Path:
    """The file a FileStimuli ``name`` in ``path`` stands for. A name that is absolute (from
    2.0 on, where names are relative), holds ``..`` or leads out of the HDF5 file's folder
    through a link is refused: its key becomes a path convert writes to, and a ``..`` there
    wrote files outside the converted set. So is a name longer than the system takes: it was
    a traceback quoting all 100 KB of it. Names are quoted shortened (``short_repr``): an
    error line stays short whatever the file holds."""
    root, file = path.parent, Path(name)
    if (relative and file.is_absolute()) or ".." in file.parts or not file.name:
        raise StimulusFileError(
            f"{path}: stimulus file name {short_repr(name)} is absolute or holds '..'; "
            f"pysaliency names files relative to the folder {root}"
        )
    file = root / file if relative else file
    try:
        file.exists()  # False for a missing file, which its reader names
    except OSError as e:  # ENAMETOOLONG
        raise StimulusFileError(
            f"{path}: stimulus file name {short_repr(name)} names no file ({e.strerror})"
        ) from None
    if not file.resolve().is_relative_to(root.resolve()):
        raise StimulusFileError(
            f"{path}: stimulus file {short_repr(name)} leads outside {root} (through a link); "
            "copy the stimuli into that folder"
        )
    return file


def _refuse_shared_keys(path: Path, names: list[str], keys: list[str]) -> None:
    """Two file names that give one key (the first folder is dropped: ``a/x.jpg``,
    ``b/x.jpg``): maps and splits are found by key, and verify passed such a set."""
    first: dict[str, str] = {}
    for name, key in zip(names, keys, strict=True):
        if key in first:
            raise StimulusFileError(
                f"{path}: stimulus files {short_repr(first[key])} and {short_repr(name)} both "
                f"stand for {short_repr(key)}; "
                "rename one"
            )
        first[key] = name


def _dataset(path: Path, f, name: str, label: str, expected: str):
    """Dataset ``name`` of ``f``; a group there is one line, not an AttributeError (a group
    has no shape). Its bytes must be in ``f``: a dataset stored in another file read that
    file, any file, as pixels or fixations (and a FIFO there would block the read)."""
    data = f[name]
    if not isinstance(data, _h5py().Dataset):
        raise StimulusFileError(f"{path}: {label} is a group, not {expected}")
    if data.external or data.is_virtual:
        raise StimulusFileError(
            f"{path}: {label} is stored in other files (HDF5 external or virtual storage), "
            "which may be any file on this machine; pysaliency stores it in this one"
        )
    return data


def _refuse_inflating_chunks(path: Path, data, name: str) -> None:
    """Refuse ``data`` if a chunk of it inflates past the chunk's size, counted chunk by chunk
    before it is read: HDF5's zlib filter grows its buffer to whatever a chunk's stream holds
    (a 400 KB stimuli.hdf5 read 400 MB for a 30x40 image, and passed). A filter whose output
    is not counted here is refused; shuffle and Fletcher-32 keep the size."""
    h5z = _h5py().h5z
    plist = data.id.get_create_plist()
    pipeline = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unbounded = set(pipeline) - {h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE, h5z.FILTER_FLETCHER32}
    if unbounded:
        raise StimulusFileError(
            f"{path}: {name} is stored through HDF5 filter {min(unbounded)}, whose output is "
            "not bounded before it is read; pysaliency writes gzip (h5repack -f GZIP=9 does too)"
        )
    if h5z.FILTER_DEFLATE not in pipeline:
        return
    skipped = 1 << pipeline.index(h5z.FILTER_DEFLATE)  # a chunk stored as is
    limit = math.prod(data.chunks) * data.id.get_type().get_size() + FLETCHER32_BYTES
    chunks = []
    data.id.chunk_iter(chunks.append)
    for chunk in chunks:
        if chunk.filter_mask & skipped:
            continue
        if inflates_past([data.id.read_direct_chunk(chunk.chunk_offset)[1]], limit):
            raise StimulusFileError(
                f"{path}: {name} holds a compressed chunk that inflates past the chunk's "
                f"{limit:,} bytes; the file is damaged or forged"
            )


def _read_whole(path: Path, f, name: str) -> np.ndarray:
    """Dataset ``name`` of ``f``, read whole once it is known to take no more memory than the
    file stores for it: a 6 KB fixations.hdf5 declared 10000x10000 trains, never written, and
    reading them took 1.7 GB."""
    data = _dataset(path, f, name, name, "an array")
    declared = data.size * data.id.get_type().get_size()
    stored = data.id.get_storage_size()
    if declared > stored + STORED_HEADROOM:
        raise StimulusFileError(
            f"{path}: {name} declares {declared:,} bytes but the file stores {stored:,} for "
            "it; compressed or never written, it could unpack to any size (pysaliency "
            "writes it uncompressed)"
        )
    _refuse_inflating_chunks(path, data, name)
    return _read_items(path, data, name) if data.dtype.kind == "O" and data.ndim else data[...]


def _read_items(path: Path, data, name: str) -> np.ndarray:
    """The variable-length items (file names) of ``data``, one at a time, together no longer
    than the file, which holds each once: they live in the file's heap, where a forged file
    points every item at one long string (600 items at 1 MB took 1.3 GB from a 1 MB file)."""
    one = (1,) * data.ndim
    space, item_space, item = (
        data.id.get_space(),
        _h5py().h5s.create_simple(one),
        np.empty(one, data.dtype),
    )
    budget, items = path.stat().st_size, np.empty(data.shape, dtype=object)
    for index in np.ndindex(data.shape):
        space.select_hyperslab(index, one)
        data.id.read(item_space, space, item)  # 5 times faster than data[index]
        items[index] = item.flat[0]
        budget -= np.asarray(items[index]).nbytes
        if budget < 0:
            raise StimulusFileError(
                f"{path}: the items of {name} are longer together than the file holding "
                "them; the file is damaged or forged"
            )
    return items


def _checked_stimulus(path: Path, f, index: int):
    """Dataset ``index`` of a Stimuli file, checked by its declared shape before it is read:
    a 1.5 KB gzip file declared a 10 GiB image."""
    data = _dataset(path, f, str(index), f"stimulus {index}", "an image array")
    image = data.ndim == 2 or (data.ndim == 3 and data.shape[2] in (3, 4))
    pixels = data.shape[0] * data.shape[1] if image else 0
    if data.dtype != np.uint8 or not 0 < pixels <= Image.MAX_IMAGE_PIXELS:
        raise StimulusFileError(
            f"{path}: stimulus {index} is {'x'.join(map(str, data.shape))} {data.dtype}; "
            f"expected an 8-bit grey, RGB or RGBA image of at most {Image.MAX_IMAGE_PIXELS:,} pixels"
        )
    _refuse_unstored(path, data, f"stimulus {index}")
    return data


def _refuse_unstored(path: Path, data, name: str) -> None:
    """Refuse ``data`` unless the file stores all of it: HDF5 reads a chunk never written (or a
    dataset never allocated) as its fill value, so a 13 KB stimuli.hdf5 declared a 9000x9000
    image that verify read as 243 MB of zeros, and passed. What is stored is bounded by
    ``_refuse_inflating_chunks``: a chunk inflates to its own size at most."""
    if data.chunks is None:
        whole = data.id.get_storage_size() >= data.size * data.dtype.itemsize
    else:
        grid = math.prod(-(-n // c) for n, c in zip(data.shape, data.chunks, strict=True))
        whole = data.id.get_num_chunks() == grid
    if not whole:
        raise StimulusFileError(
            f"{path}: {name} is {'x'.join(map(str, data.shape))} but the file stores only part "
            "of it (the rest, never written, reads as zeros); the file is damaged or forged"
        )


def read_stimuli(path: Path) -> tuple[list[StimulusRef], list[Path] | None]:
    """Refs plus the stimulus files (FileStimuli), or None (Stimuli: ``read_array`` reads
    one array at a time, a whole set would not fit in memory)."""
    with _h5py().File(path, "r") as f:
        kind, version = _type_version(f, path)
        size = int(f.attrs["size"])
        cats = _read_whole(path, f, "category") if _lists_category(f) else None
        if kind == "FileStimuli":
            names = [_text(s) for s in _read_whole(path, f, "filenames")]
            relative = names_relative(version, path)
            files = [stimulus_file(path, n, relative) for n in names]
            keys = [key_from_filename(n) if relative else Path(n).name for n in names]
            _refuse_shared_keys(path, names, keys)
        elif kind == "Stimuli":
            for i in range(size):
                _checked_stimulus(path, f, i)
            files, keys = None, [f"{i:04d}.png" for i in range(size)]
        else:
            raise LayoutError(
                f"{path}: type {short_repr(kind)}, expected 'FileStimuli' or 'Stimuli'"
            )
    refs = []
    for i, key in enumerate(keys):
        if "/" in key:
            cat = key.split("/")[0]
        elif cats is not None:
            cat = f"category_{int(cats[i]):02d}"
        else:
            cat = ""
        refs.append(StimulusRef(key, cat))
    return refs, files


def read_array(path: Path, index: int) -> np.ndarray:
    with _h5py().File(path, "r") as f:
        data = _checked_stimulus(path, f, index)
        _refuse_inflating_chunks(path, data, f"stimulus {index}")
        return data[...]


def _flatten_trains(xs: np.ndarray, ys: np.ndarray, ns: np.ndarray, lengths) -> tuple:
    """NaN-padded (trains, longest) arrays to flat fixations; before FixationTrains 1.3
    the length of a train is its count of leading non-NaN entries."""
    if lengths is None:
        lengths = (~np.isnan(xs)).sum(axis=1)
    lengths = np.asarray(lengths, dtype=int)
    keep = np.arange(xs.shape[1])[None, :] < lengths[:, None]
    return xs[keep], ys[keep], np.repeat(ns, lengths)


def stimulus_indices(path: Path, name: str, ns: np.ndarray, stimuli: int) -> np.ndarray:
    """``ns``, the dataset ``name`` of ``path``, if each is the index of one of its
    ``stimuli``: the fixations of any other (999, or -1, which pysaliency reads as the last)
    were dropped without a word."""
    ns = np.asarray(ns)
    valid = (ns >= 0) & (ns < stimuli) & (ns == np.round(ns))  # NaN compares False
    if not valid.all():
        numbered = f", numbered 0 to {stimuli - 1}" if stimuli else ""
        raise StimulusFileError(
            f"{path}: {name} holds {ns[~valid][0].item()}, which is not a stimulus index: "
            f"{STIMULI_FILE} has {stimuli} stimuli{numbered}"
        )
    return ns.astype(int)


def read_fixations(path: Path, stimuli: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All fixations as flat ``x``, ``y`` and stimulus index ``n`` (one of ``stimuli``)."""
    with _h5py().File(path, "r") as f:
        kind, version = _type_version(f, path)

        def read(name: str) -> np.ndarray:
            return _read_whole(path, f, name)

        if kind == "FixationTrains":
            lengths = read("train_lengths") if "train_lengths" in f else None
            ns = stimulus_indices(path, "train_ns", read("train_ns"), stimuli)
            return _flatten_trains(read("train_xs"), read("train_ys"), ns, lengths)
        if kind == "Fixations":
            return read("x"), read("y"), stimulus_indices(path, "n", read("n"), stimuli)
        if kind == "ScanpathFixations":
            ns = stimulus_indices(path, "scanpaths/n", read("scanpaths/n"), stimuli)
            return _flatten_trains(
                read("scanpaths/xs"), read("scanpaths/ys"), ns, read("scanpaths/lengths")
            )
    raise LayoutError(
        f"{path}: type {short_repr(kind)}, expected FixationTrains, Fixations or ScanpathFixations"
    )


def _read(reader, path: Path):
    """``reader(path)``; a damaged file is one line naming it (bad data, as a missing stimulus)."""
    try:
        return reader(path)
    except LayoutError:
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError) as err:
        raise StimulusFileError(f"{path}: unreadable pysaliency HDF5 ({first_line(err)})") from None
    except MemoryError:
        raise StimulusFileError(f"{path}: too large to read into memory") from None


class PysaliencyHdf5(SaliencySource):
    layout = "hdf5"

    def __init__(self, root: Path):
        root = Path(root)
        for name in (STIMULI_FILE, FIXATIONS_FILE):
            if not regular_file(root / name).is_file():
                raise LayoutError(
                    f"{root}: {name} missing; the pysaliency layout needs both "
                    f"{STIMULI_FILE} and {FIXATIONS_FILE}"
                )
        refs, self.files = _read(read_stimuli, root / STIMULI_FILE)
        x, y, n = _read(lambda p: read_fixations(p, len(refs)), root / FIXATIONS_FILE)
        super().__init__(root, refs)
        self.dataset = "CAT2000" if any(r.category for r in refs) else "MIT1003"
        order = np.argsort(n, kind="stable")
        self._xy = np.stack([x, y], axis=1)[order].astype(np.float64)
        bounds = np.searchsorted(n[order], np.arange(len(refs) + 1))
        self._bounds = bounds

    def map_path(self, ref: StimulusRef) -> Path | None:
        stem = Path(MAPS_DIR) / Path(ref.key).with_suffix("")
        for suffix in (".jpg", ".png"):
            p = self.root / stem.with_suffix(suffix)
            if p.exists():  # a FIFO or folder there is named by its reader
                return p
        return None

    def load(self, index: int) -> Sample:
        ref = self.refs[index]
        if self.files is not None:
            image = read_image(self.files[index], "RGB")
            extra = {"stimulus_file": self.files[index]}
        else:
            image = _read(lambda p: read_array(p, index), self.root / STIMULI_FILE)
            extra = {}
        map_path = self.map_path(ref)
        extra["map_file"] = map_path
        image = as_rgb(image)
        fixations = self._inside(
            ref, self._xy[self._bounds[index] : self._bounds[index + 1]], image
        )
        fmap = read_map(map_path, image.shape[:2]) if map_path else None
        return Sample(
            ref.key,
            ref.category,
            image,
            fixations.copy(),
            fmap,
            extra=extra,
        )

    def _inside(self, ref: StimulusRef, fixations: np.ndarray, image: np.ndarray) -> np.ndarray:
        """``fixations`` if each rounds to a pixel of ``image``: a NaN, infinite or outside one
        is damaged data, which the image layouts' masks would clamp to the border."""
        h, w = image.shape[:2]
        px = np.rint(fixations)  # NaN compares False below: no cast, no numpy warning
        inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
        if not inside.all():
            x, y = fixations[~inside][0]
            raise StimulusFileError(
                f"{self.root / FIXATIONS_FILE}: {int((~inside).sum())} fixations of {ref.key} "
                f"are not finite or outside its {h}x{w} image (e.g. x={x:g}, y={y:g})"
            )
        return fixations


def write_dataset(dst: Path, samples, prefix: str) -> int:
    """Write ``samples`` as FileStimuli 2.1 + FixationTrains 1.2; return the stimulus count.

    FixationTrains 1.2 is the newest version that both pysaliency on PyPI (0.2.22, reads
    up to 1.2) and its current source (reads 1.0-1.3) accept.

    Stimulus files go to ``dst/<prefix>/<key>`` (pysaliency uses ``stimuli`` for MIT1003 and
    ``Stimuli`` for CAT2000); each stimulus' fixations become one train of subject 0.
    """
    _h5py()  # before anything is written
    dst.mkdir(parents=True, exist_ok=True)
    names, shapes, cats, trains = [], [], [], []
    cat_index: dict[str, int] = {}
    for s in samples:
        target = dst / prefix / s.key
        target.parent.mkdir(parents=True, exist_ok=True)
        src = s.extra.get("stimulus_file")
        if src is not None and Path(src).suffix.lower() == target.suffix.lower():
            shutil.copyfile(src, target)
        else:
            target = target.with_suffix(".png")
            Image.fromarray(s.image).save(target)
        name = os.path.relpath(target, dst)
        try:
            name.encode("utf8")
        except UnicodeEncodeError:  # the name's bytes, as escapes: the line must print
            shown = os.fsencode(src or s.key).decode("utf8", "backslashreplace")
            raise StimulusFileError(
                f"{shown}: the file name is not UTF-8, which pysaliency's HDF5 cannot hold; "
                "rename it"
            ) from None
        names.append(name)
        shapes.append(s.image.shape)
        cats.append(cat_index.setdefault(s.category, len(cat_index)))
        trains.append(s.fixations)
        map_src = s.extra.get("map_file")
        if map_src is not None:
            m = dst / MAPS_DIR / Path(s.key).with_suffix(Path(map_src).suffix)
            m.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(map_src, m)
    _write_file_stimuli(dst / STIMULI_FILE, names, shapes, cats if any(cat_index) else None)
    _write_fixation_trains(dst / FIXATIONS_FILE, trains)
    return len(names)


def _write_file_stimuli(path: Path, names, shapes, categories) -> None:
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["type"] = np.bytes_("FileStimuli")
        f.attrs["version"] = np.bytes_("2.1")
        f.create_dataset(
            "filenames",
            data=np.array([n.encode("utf8") for n in names]),
            dtype=h5py.special_dtype(vlen=str),
        )
        ds = f.create_dataset(
            "shapes", (len(shapes),), dtype=h5py.special_dtype(vlen=np.dtype("int64"))
        )
        for i, shape in enumerate(shapes):
            ds[i] = np.array(shape, dtype=np.int64)
        attributes = []
        if categories is not None:
            f.create_dataset("category", data=np.asarray(categories, dtype=np.int64))
            attributes.append("category")
        f.attrs["__attributes__"] = np.bytes_(json.dumps(attributes))
        f.attrs["size"] = len(names)
    write_atomic(path, buf.getvalue())


def _write_fixation_trains(path: Path, trains: list[np.ndarray]) -> None:
    h5py = _h5py()
    longest = max([len(t) for t in trains] + [1])
    xs = np.full((len(trains), longest), np.nan)
    ys, ts = xs.copy(), xs.copy()
    for i, t in enumerate(trains):
        xs[i, : len(t)], ys[i, : len(t)] = t[:, 0], t[:, 1]
        ts[i, : len(t)] = np.arange(len(t))
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["type"] = np.bytes_("FixationTrains")
        f.attrs["version"] = np.bytes_("1.2")
        f.create_dataset("train_xs", data=xs)
        f.create_dataset("train_ys", data=ys)
        f.create_dataset("train_ts", data=ts)
        f.create_dataset("train_ns", data=np.arange(len(trains), dtype=np.int64))
        f.create_dataset("train_subjects", data=np.zeros(len(trains), dtype=np.int64))
        f.attrs["__attributes__"] = np.bytes_(json.dumps([]))
        f.attrs["scanpath_attribute_mapping"] = np.bytes_(json.dumps({}))
        for group in ("scanpath_attributes", "scanpath_fixation_attributes"):
            f.create_group(group).attrs["__attributes__"] = np.bytes_(json.dumps([]))
    write_atomic(path, buf.getvalue())
