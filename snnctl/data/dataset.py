"""Datasets as tensors (images in [0, 1], labels, class names) and what is done to them
before training: seeded stratified splits, seeded limits, resizing, epoch orders.

Every seed comes from :mod:`snnctl.seeds`, so the same ``seed`` gives the same split,
the same kept images and the same order of every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from snnctl.config import Config
from snnctl.errors import ConfigError
from snnctl.seeds import epoch_seed

Notice = Callable[[str], None]

# The two parts of a Splits, in the order they are decoded, written and read.
SPLITS = ("train", "test")


@dataclass
class Dataset:
    """Images flattened to ``[n, input_size * input_size]``, float in [0, 1] or uint8 (255 = 1),
    with int labels."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    # Where each image came from (file paths for image folders), for prediction files.
    sources: list[str] = field(default_factory=list)
    # The patient group of each image (image folders with ``group`` or ``group_file``).
    groups: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.numel())

    def source(self, index: int) -> str:
        return self.sources[index] if self.sources else str(index)

    def subset(self, indices: torch.Tensor) -> "Dataset":
        chosen = indices.tolist()
        sources = [self.sources[i] for i in chosen] if self.sources else []
        groups = [self.groups[i] for i in chosen] if self.groups else []
        return Dataset(self.images[indices], self.labels[indices], self.class_names, sources, groups)


@dataclass
class Splits:
    train: Dataset
    test: Dataset
    origin: str  # where the data came from, for the run's log and the checkpoint
    # Image folders: how the split was made (root, seed, ...), for the run's manifest.
    manifest: dict | None = None


def class_quotas(sizes: Sequence[int], n_test: int) -> list[int]:
    """How many of each class's ``sizes`` images to hold out: each class's share of
    ``n_test`` rounded, then, where the roundings add up to more or fewer than ``n_test``
    (10,000 of MNIST's 60,000 training images rounded class by class are 10,001), the
    classes rounded furthest the other way moved by one image each, so that they sum to
    ``n_test`` (the largest-remainder rule). Where they already did, they are the
    roundings themselves."""
    fraction = n_test / max(sum(sizes), 1)
    shares = [size * fraction for size in sizes]
    quotas = [int(round(share)) for share in shares]
    drift = sum(quotas) - n_test
    by_rounding = sorted(range(len(sizes)), key=lambda c: quotas[c] - shares[c], reverse=drift > 0)
    for c in by_rounding[:abs(drift)]:
        quotas[c] -= 1 if drift > 0 else -1
    return quotas


def stratified_split(labels: torch.Tensor, n_test: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split holding out ``n_test`` images, each class in proportion to its size
    (:func:`class_quotas`), at least one image of every class of two or more on each
    side."""
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    members_of = [torch.nonzero(labels == label).flatten() for label in classes.tolist()]
    quotas = class_quotas([len(members) for members in members_of], n_test)
    train_parts, test_parts = [], []
    for members, k in zip(members_of, quotas):
        members = members[torch.randperm(len(members), generator=generator)]
        k = min(max(k, 1), len(members) - 1) if len(members) > 1 else 0
        test_parts.append(members[:k])
        train_parts.append(members[k:])
    train = torch.cat(train_parts)
    test = torch.cat(test_parts)
    return train[torch.randperm(len(train), generator=generator)], torch.sort(test).values


def concatenate(first: Dataset, second: Dataset) -> Dataset:
    """Two datasets of the same classes, one after the other."""
    sources = first.sources + second.sources if first.sources and second.sources else []
    groups = first.groups + second.groups if first.groups and second.groups else []
    return Dataset(torch.cat([first.images, second.images]), torch.cat([first.labels, second.labels]),
                   first.class_names, sources, groups)


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


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The seeded shuffle of one epoch: the same for the same seed and epoch."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))


def training_order(dataset: Dataset, config: Config, epoch: int) -> torch.Tensor:
    """Indices of one training epoch: a seeded shuffle, or with ``balance`` an
    interleaving of the classes so that every batch draws them equally (smaller classes
    are repeated, each class in its own seeded shuffle). With ``patch_size`` an epoch is
    ``windows_per_image`` such passes, each image giving one random window per pass."""
    passes = config.windows_per_image if config.patch_size else 1
    return torch.cat([_one_pass(dataset, config, epoch * passes + number) for number in range(passes)])


def images_per_epoch(dataset: Dataset, config: Config) -> int:
    """Presentations in one training epoch (:func:`training_order`'s length)."""
    return len(training_order(dataset, config, 0))


def _one_pass(dataset: Dataset, config: Config, shuffle: int) -> torch.Tensor:
    """One pass over ``dataset`` in the order of :func:`training_order`, seeded by ``shuffle``."""
    if not config.balance:
        return epoch_order(len(dataset), config.seed, shuffle)
    generator = torch.Generator().manual_seed(epoch_seed(config.seed, shuffle))
    classes = [torch.nonzero(dataset.labels == c).flatten() for c in range(len(dataset.class_names))]
    classes = [members[torch.randperm(len(members), generator=generator)] for members in classes if len(members)]
    per_class = max(len(members) for members in classes)
    columns = [members.repeat(per_class // len(members) + 1)[:per_class] for members in classes]
    return torch.stack(columns, 1).flatten()


def check_class_count(config: Config, class_names: Sequence[str]) -> None:
    """The data's classes must be ``n_classes`` of them: one ConfigError line naming the
    number to set otherwise (before any image is decoded, where the loader can)."""
    found = len(class_names)
    if found != config.n_classes:
        raise ConfigError(f"n_classes: {config.n_classes} does not match the {found} classes of the data "
                          f"({', '.join(class_names)}); set n_classes: {found} (--set n_classes={found})")
