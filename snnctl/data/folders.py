"""Image folders for the MAMMO task: find the class folders, split, and decode the files.

Layouts: ``DATA_DIR/<class>/<images>``, split here by :func:`stratified_split` (seeded,
``test_fraction`` held out from each class), or ``DATA_DIR/train/<class>`` and
``DATA_DIR/test/<class>`` when the data is already split. Class names are the folder
names, sorted. Files are read by :mod:`snnctl.data.images`; every image is decoded once
per run, and :mod:`snnctl.data.manifest` records the split in the run directory.
docs/mammo.md describes the layouts.
"""

from __future__ import annotations

from pathlib import Path

import torch

from snnctl.config import Config
from snnctl.data.dataset import SPLITS, Dataset, Notice, Splits, limit_indices, stratified_split
from snnctl.data.images import UnreadableImage, fit, image_format, read_image, unknown_format
from snnctl.errors import ConfigError, SnnctlError, WarningText
from snnctl.seeds import limit_seed

# One image file: path relative to the data folder, label, format (None: found when read).
ImageFile = tuple[str, int, str | None]


def _data_root(data_dir: str) -> Path:
    root = Path(data_dir)
    if not root.exists():
        raise ConfigError(f"data_dir: {data_dir} does not exist (MAMMO expects {data_dir}/<class>/<images>)")
    if not root.is_dir():
        raise ConfigError(f"data_dir: {data_dir} is not a folder")
    return root.resolve()


def _class_names(folder: Path) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise SnnctlError(f"{folder}: no class folders; put the images in one folder per class, {folder}/<class>/<images>")
    if len(names) == 1:
        raise SnnctlError(f"{folder}: only one class folder ({names[0]}); MAMMO needs two or more classes")
    return names


def _class_files(folder: Path, label: int, root: Path) -> list[ImageFile]:
    """Every image under one class folder, sorted; hidden files are left out, a file of
    an unknown format is an error."""
    found = []
    for path in sorted(folder.rglob("*")):
        inside = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in inside.parts):
            continue
        kind = image_format(path)
        if kind is None:
            raise unknown_format(path)
        found.append((path.relative_to(root).as_posix(), label, kind))
    if not found:
        raise SnnctlError(f"{folder}: class folder holds no images")
    return found


def _labelled_files(folder: Path, classes: list[str], root: Path) -> list[ImageFile]:
    return [f for label, name in enumerate(classes) for f in _class_files(folder / name, label, root)]


def _discover(root: Path) -> tuple[list[str], dict[str, list[ImageFile]]]:
    """Class names and the image files of ``root``: {"all": ...} to split, or {"train", "test"}."""
    present = [name for name in SPLITS if (root / name).is_dir()]
    if len(present) == 1:
        missing = "test" if present == ["train"] else "train"
        raise SnnctlError(f"{root}: has a {present[0]}/ folder but no {missing}/ folder; an existing split needs "
                          f"both ({root}/train/<class> and {root}/test/<class>)")
    if not present:
        classes = _class_names(root)
        return classes, {"all": _labelled_files(root, classes, root)}
    classes, test_classes = _class_names(root / "train"), _class_names(root / "test")
    if test_classes != classes:
        raise SnnctlError(f"{root}/test: class folders ({', '.join(test_classes)}) differ from "
                          f"those of {root}/train ({', '.join(classes)})")
    return classes, {split: _labelled_files(root / split, classes, root) for split in SPLITS}


def image_files(data_dir: str) -> set[str]:
    """Every image file of a MAMMO data folder, relative to it (as a split lists them)."""
    _, found = _discover(_data_root(data_dir))
    return {relative for files in found.values() for relative, _, _ in files}


def _decode(root: Path, files: list[ImageFile], classes: list[str], config: Config,
            notice: Notice, skipped: list[str]) -> Dataset:
    """Decode, fit and stack the images; unreadable ones are skipped with a warning (and
    added to ``skipped``), or with ``strict`` stop the run."""
    images = torch.empty(len(files), config.n_inputs)
    kept: list[tuple[str, int]] = []
    for relative, label, kind in files:
        try:
            pixels = read_image(root / relative, kind)
        except UnreadableImage as exc:
            if config.strict:
                raise SnnctlError(f"{exc} (strict: true; set strict: false to skip unreadable images)") from None
            notice(WarningText(f"skipped {exc}"))
            skipped.append(relative)
            continue
        images[len(kept)] = fit(pixels, config.input_size, config.resize)
        kept.append((relative, label))
    labels = torch.tensor([label for _, label in kept], dtype=torch.int64)
    return Dataset(images[:len(kept)], labels, list(classes), [str(root / relative) for relative, _ in kept])


def decode_splits(root: Path, lists: dict[str, list[ImageFile]], classes: list[str],
                  config: Config, notice: Notice) -> tuple[Dataset, Dataset, list[str]]:
    """Both splits decoded, with one closing count of the skipped images; every class
    must keep a training image and the test split an image."""
    total = sum(len(files) for files in lists.values())
    notice(f"decoding {total} images from {root}")
    skipped: list[str] = []
    train, test = (_decode(root, lists[split], classes, config, notice, skipped) for split in SPLITS)
    if skipped:
        notice(WarningText(f"skipped {len(skipped)} of {total} images that could not be read "
                           f"(strict: true makes them errors)"))
    for label, name in enumerate(classes):
        if not (train.labels == label).any():
            raise SnnctlError(f"{root}: class {name!r} has no readable training image")
    if len(test) == 0:
        raise SnnctlError(f"{root}: no readable held-out image")
    return train, test, skipped


def _counts(labels: torch.Tensor, classes: list[str]) -> str:
    counts = torch.bincount(labels, minlength=len(classes)).tolist()
    return ", ".join(f"{name}: {count}" for name, count in zip(classes, counts))


def load_image_folders(config: Config, notice: Notice) -> Splits:
    """The MAMMO training and held-out images of ``config.data_dir``.

    Without train/ and test/ folders, a split stratified by class holds out
    ``test_fraction`` of each class (seeded by ``seed``); ``n_train`` and ``n_test``
    then keep a seeded subset, before anything is decoded.
    """
    root = _data_root(config.data_dir)
    classes, found = _discover(root)
    to_split = "all" in found
    if to_split:
        files = found["all"]
        labels = torch.tensor([label for _, label, _ in files])
        train_idx, test_idx = stratified_split(labels, round(config.test_fraction * len(files)), config.seed)
        lists = {"train": [files[i] for i in train_idx.tolist()], "test": [files[i] for i in test_idx.tolist()]}
        how = (f"{len(files)} images in the class folders of {root} ({_counts(labels, classes)}); "
               f"{config.test_fraction * 100:g}% of each class held out (seed {config.seed})")
    else:
        lists = found
        how = f"the train/ and test/ class folders of {root}"
    for split, n in (("train", config.n_train), ("test", config.n_test)):
        keep = limit_indices(len(lists[split]), n, limit_seed(config.seed, split))
        lists[split] = [lists[split][i] for i in keep.tolist()]
    train, test, skipped = decode_splits(root, lists, classes, config, notice)
    # how the split was made; manifest.write_manifest adds the file lists
    manifest = {
        "data_dir": str(root), "layout": "class folders" if to_split else "train/test folders",
        "seed": config.seed, "test_fraction": config.test_fraction if to_split else None,
        "input_size": config.input_size, "resize": config.resize, "classes": classes, "skipped": skipped,
    }
    origin = f"{how}; {len(train)} train / {len(test)} test" + (f", {len(skipped)} unreadable skipped" if skipped else "")
    return Splits(train, test, origin, manifest)
