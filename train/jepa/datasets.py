"""The image datasets JEPA trains and evaluates on (``IMAGE_SETS``, the one place that lists
them: config, download and evaluation read it), each read by torchvision's own loader.

| kind        | pretraining split        | evaluation splits | default root            |
|-------------|--------------------------|-------------------|-------------------------|
| cifar10     | train                    | train / test      | <data_path>/cifar10     |
| cifar100    | train                    | train / test      | <data_path>/cifar100    |
| stl10       | train+unlabeled          | train / test      | <data_path>/stl10       |
| imagenet    | train                    | train / val       | <data_path>/imagenet    |
| imagenet100 | train (100 CMC classes)  | train / val       | <data_path>/imagenet    |
| synthetic   | train                    | train / test      | none (drawn in memory)  |
| digits      | train                    | train / test      | none (scikit-learn's)   |

``synthetic`` draws ``synthetic_kind`` ``textures`` or ``shapes`` (``train.jepa.synthetic``).

``digits`` are the 1,797 real 8x8 handwritten digits (UCI, 10 classes) that scikit-learn ships
inside its package (``sklearn.datasets.load_digits``): a real labelled image set that is on disk
wherever scikit-learn is installed, used by the benchmark. A fixed stratified 80/20 split.

CIFAR and STL-10 loaders check every file's MD5 (torchvision's lists) before reading.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import datasets as tvd
from torchvision.datasets.folder import has_file_allowed_extension

from train.jepa.synthetic import SyntheticImages
from trajkit.images import UNREADABLE_IMAGE, open_image, unreadable_reason

IMAGENET100_FILE = Path(__file__).with_name("imagenet100.txt")
SYNTHETIC_TEST_FRACTION = 0.25
DIGITS_TEST_FRACTION = 0.2
Builder = Callable[..., Dataset]


class DatasetMissing(RuntimeError):
    """Data not on disk (or corrupted); the message says how to get it, ``problem`` only
    what is wrong (for the download command, whose advice would be to run itself)."""

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message


class DamagedImage(DatasetMissing):
    """An image of an ImageFolder set that does not decode (0 bytes, truncated, not an image)."""


def read_image(path: str) -> Image.Image:
    """torchvision's PIL loader, but a file that does not decode is one line naming it, where
    PIL's own error names no file (a truncated JPEG) or an open file object, and an image above
    PIL's pixel limit is one too, not a traceback or PIL's warning on stderr."""
    try:
        with open_image(path) as image:
            return image.convert("RGB")
    except UNREADABLE_IMAGE as err:
        why = (
            "no image format recognised"
            if isinstance(err, UnidentifiedImageError)
            else unreadable_reason(err)
        )
        raise DamagedImage(
            f"{path} is not a readable image ({why}); replace or remove it"
        ) from None


MAX_FOLDERS = 100_000  # in one class folder's walk; ImageNet's have none below them


def image_paths(folder: str, is_image: Callable[[str], bool]) -> list[str]:
    """The files under ``folder`` that ``is_image`` accepts, in torchvision's order (folders by
    path, then names), links followed as torchvision follows them, but a link back to a folder
    it is in is one line: torchvision's walk of it never ends (``x -> .`` and ``y -> .``
    make 2^40 paths). So is a file named like an image that is not a regular file: a FIFO
    blocks its reader for ever."""
    names: dict[str, list[str]] = {}
    real = Path(os.path.realpath(folder))
    todo = [(folder, frozenset(_identity(os.stat(p)) for p in (real, *real.parents)))]
    while todo:
        if len(names) >= MAX_FOLDERS:
            raise DatasetMissing(
                f"{folder} holds more than {MAX_FOLDERS:,} folders, counted through its links "
                "(links that branch: two a level over 26 levels are 2^26 paths); remove them"
            )
        path, above = todo.pop()
        here = names.setdefault(path, [])
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    is_dir, is_file = entry.is_dir(), entry.is_file()
                except OSError:  # a link that leads to itself, which os.walk takes for a file
                    is_dir = is_file = False
                if is_dir:
                    identity = _identity(entry.stat())
                    if identity in above:
                        raise DatasetMissing(
                            f"{entry.path} leads back to {os.path.realpath(entry.path)}, a "
                            "folder it is in (a symbolic link loop); remove the link"
                        )
                    todo.append((entry.path, above | {identity}))
                elif is_image(entry.path):
                    if not is_file:
                        raise DamagedImage(
                            f"{entry.path} is not a regular file (a FIFO, device or broken "
                            "link); replace or remove it"
                        )
                    here.append(entry.name)
    return [os.path.join(path, name) for path in sorted(names) for name in sorted(names[path])]


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


class CheckedImageFolder(tvd.ImageFolder):
    """torchvision's ImageFolder, listed by ``image_paths``, and a class folder without images
    is one line naming the folder (``DatasetMissing``)."""

    @staticmethod
    def make_dataset(
        directory: str,
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        is_image = is_valid_file or partial(has_file_allowed_extension, extensions=extensions)
        samples = []
        for name in sorted(class_to_idx):
            folder = os.path.join(directory, name)
            found = image_paths(folder, is_image) if os.path.isdir(folder) else []
            if not found and not allow_empty:
                raise DatasetMissing(f"{folder} holds no image file (.JPEG, .png, ...)")
            samples += [(path, class_to_idx[name]) for path in found]
        return samples


def imagenet100_classes(path: Path = IMAGENET100_FILE) -> list[str]:
    """The 100 WordNet ids of the CMC subset (Tian et al. 2020), in file order."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class ClassSubsetImageFolder(CheckedImageFolder):
    """An ImageFolder that keeps only the listed class folders, labelled 0..n-1 in sorted order."""

    def __init__(self, root: str | Path, classes: list[str], **kwargs) -> None:  # noqa: ANN003
        self._wanted = sorted(set(classes))
        super().__init__(str(root), **kwargs)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        present = {p.name for p in Path(directory).iterdir() if p.is_dir()}
        missing = [c for c in self._wanted if c not in present]
        if missing:
            raise DatasetMissing(
                f"{directory} lacks {len(missing)} of the {len(self._wanted)} wanted class folders "
                f"(first: {missing[0]}); see `python -m train.jepa.download imagenet100`"
            )
        return self._wanted, {c: i for i, c in enumerate(self._wanted)}


class DigitsImages(Dataset):
    """scikit-learn's 8x8 digits as grey PIL images (``0..16`` scaled to ``0..255``) and labels."""

    def __init__(self, split: str, transform=None) -> None:  # noqa: ANN001
        try:
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split
        except ImportError:
            raise DatasetMissing("digits needs scikit-learn (pip install scikit-learn)") from None
        digits = load_digits()
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)
        parts = train_test_split(
            images,
            digits.target,
            test_size=DIGITS_TEST_FRACTION,
            stratify=digits.target,
            random_state=0,
        )
        self.images, self.labels = (parts[1], parts[3]) if split == "test" else (parts[0], parts[2])
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple:
        image = Image.fromarray(self.images[i], mode="L").convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[i])


def _torchvision(cls: type, splits: dict[str, object]) -> Builder:
    """A builder for a torchvision dataset class; ``splits`` maps ours to its argument."""

    def build(spec, root: Path, split: str, transform, image_size: int, seed: int) -> Dataset:  # noqa: ANN001
        arg = splits[split]
        kwargs = {"train": arg} if isinstance(arg, bool) else {"split": arg}
        try:
            return cls(str(root), transform=transform, download=False, **kwargs)
        except RuntimeError as err:
            raise _missing(spec.kind, root, str(err).split(".")[0].lower()) from None
        except UnicodeDecodeError:  # STL-10's class_names.txt, the one text file they read
            names = Path(root, cls.base_folder, cls.class_names_file)
            raise _missing(spec.kind, root, f"{names} is not UTF-8 text") from None

    return build


def _image_folders(classes: Callable[[], list[str]] | None) -> Builder:
    """A builder for ``root/train`` and ``root/val`` ImageFolders (only ``classes``, if given)."""

    def build(spec, root: Path, split: str, transform, image_size: int, seed: int) -> Dataset:  # noqa: ANN001
        folder = root / ("val" if split == "test" else "train")
        if not folder.is_dir():
            raise _missing(spec.kind, root, f"no folder {folder}")
        if classes is None:
            return CheckedImageFolder(str(folder), transform=transform, loader=read_image)
        return ClassSubsetImageFolder(folder, classes(), transform=transform, loader=read_image)

    return build


def _synthetic(spec, root: Path, split: str, transform, image_size: int, seed: int) -> Dataset:  # noqa: ANN001
    n = spec.synthetic_size
    if split == "test":
        n = max(1, int(n * SYNTHETIC_TEST_FRACTION))
    tv_split = "test" if split == "test" else "train"
    return SyntheticImages(
        n, tv_split, image_size, seed, transform=transform, kind=spec.synthetic_kind
    )


def _digits(spec, root: Path, split: str, transform, image_size: int, seed: int) -> Dataset:  # noqa: ANN001
    return DigitsImages("test" if split == "test" else "train", transform)


@dataclass(frozen=True)
class ImageSet:
    """All the project knows of one image dataset; a new one is one entry of ``IMAGE_SETS``.

    ``build(spec, root, split, transform, image_size, seed)`` makes the split ``pretrain``,
    ``train`` or ``test``; ``folder`` is its place under ``--data-path`` (None: nothing on disk);
    ``archive`` is the torchvision class whose ``url``/``filename``/``tgz_md5`` the downloader
    fetches (``unpacked_ratio``: its unpacked size over its size, for the disk-space check);
    ``manual`` marks an ImageFolder set that cannot be downloaded (ImageNet), which the
    downloader verifies instead (``manual_classes``: the class folders it needs; None: all).
    """

    build: Builder
    folder: str | None = None
    archive: type | None = None
    unpacked_ratio: float = 1.1
    manual: bool = False
    manual_classes: Callable[[], list[str]] | None = None


CIFAR_SPLITS = {"pretrain": True, "train": True, "test": False}
IMAGE_SETS: dict[str, ImageSet] = {
    "cifar10": ImageSet(_torchvision(tvd.CIFAR10, CIFAR_SPLITS), "cifar10", tvd.CIFAR10),
    "cifar100": ImageSet(_torchvision(tvd.CIFAR100, CIFAR_SPLITS), "cifar100", tvd.CIFAR100),
    "stl10": ImageSet(
        _torchvision(tvd.STL10, {"pretrain": "train+unlabeled", "train": "train", "test": "test"}),
        "stl10",
        tvd.STL10,
        unpacked_ratio=1.05,
    ),
    "imagenet": ImageSet(_image_folders(None), "imagenet", manual=True),
    "imagenet100": ImageSet(
        _image_folders(lambda: imagenet100_classes()),
        "imagenet",
        manual=True,
        manual_classes=lambda: imagenet100_classes(),
    ),
    "synthetic": ImageSet(_synthetic),
    "digits": ImageSet(_digits),
}


def dataset_root(spec, data_path: str | Path) -> Path:  # noqa: ANN001
    if spec.root:
        return Path(spec.root)
    return Path(data_path) / (IMAGE_SETS[spec.kind].folder or spec.kind)


def _missing(kind: str, root: Path, why: str) -> DatasetMissing:
    """The advice names a download that fills ``root``. The downloader writes
    ``DATA_PATH/<folder>``: for a ``root`` of another name, ``--data-path root.parent`` (the
    advice before) filled a sibling folder, so the advice names the folder to use instead."""
    problem = f"{kind} not usable at {root} ({why})"
    folder = IMAGE_SETS[kind].folder
    if root.name == folder:
        advice = f"run `python -m train.jepa.download {kind} --data-path {root.parent}`"
    else:
        advice = (
            f"run `python -m train.jepa.download {kind} --data-path {root}` and make its "
            f"{root / folder} the dataset's root"
        )
    return DatasetMissing(f"{problem}; {advice}", problem)


def build_dataset(
    spec,  # noqa: ANN001  (a train.jepa.config.DatasetSpec)
    data_path: str | Path,
    split: str,
    transform=None,  # noqa: ANN001
    image_size: int = 32,
    seed: int = 0,
) -> Dataset:
    """``split`` is ``pretrain``, ``train`` or ``test`` (``val`` for ImageNet is ``test``)."""
    if split not in ("pretrain", "train", "test"):
        raise ValueError(f"split must be pretrain, train or test, got {split!r}")
    root = dataset_root(spec, data_path)
    return IMAGE_SETS[spec.kind].build(spec, root, split, transform, image_size, seed)
