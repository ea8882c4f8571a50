"""Image folders for the MAMMO task: find the class folders, split, and decode the files.

Layouts: ``DATA_DIR/<class>/<images>``, split here by :func:`stratified_split` (seeded,
``test_fraction`` held out from each class), or ``DATA_DIR/train/<class>`` and
``DATA_DIR/test/<class>`` when the data is already split. Class names are the folder
names, sorted. Files are read by :mod:`snnctl.data.images`; every image is decoded once
per run, and :mod:`snnctl.data.manifest` records the split in the run directory.
docs/mammo.md describes the layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from snnctl.config import DEFAULTS, Config
from snnctl.data.dataset import SPLITS, Dataset, Notice, Splits, check_class_count, limit_indices, stratified_split
from snnctl.data.encodings import encode_dataset, is_plain
from snnctl.data.groups import groups_from_file, groups_from_regex, inside_class_folder, looks_grouped, split_for
from snnctl.data.images import SIXTEEN_BITS, UnreadableImage, fit, image_format, read_image, unknown_format
from snnctl.errors import ConfigError, SnnctlError, WarningText
from snnctl.seeds import limit_seed
from snnctl.validators import yaml_quoted

# One image file: path relative to the data folder, label, format (None: found when read),
# patient group (None: no groups).
ImageFile = tuple[str, int, str | None, str | None]
# Below this brightest grey level (the median image's), a notice: 16-bit files holding
# 14-bit values reach 0.25 at most, 12-bit ones 0.0625.
DIM_IMAGE = 0.25
# Bit depths that 16-bit files of a data set may hold, smallest first (DICOM's BitsStored).
STORED_BITS = (10, 12, 14)


def dataset_groups(groups: list[str | None]) -> list[str]:
    """A :class:`Dataset`'s ``groups`` from its images' groups: all of them when every
    image has one, else none."""
    return list(groups) if all(group is not None for group in groups) else []


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


def _files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``, sorted, through folders that are symbolic links too (a
    patient's folder linked in from an archive; each real folder once, so a link back up
    ends there). A link whose target is gone is listed: reading it fails as an unreadable
    image does, with a warning naming it, where leaving it out would say nothing."""
    found, seen = [], set()
    for directory, subfolders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        found.extend(Path(directory) / name for name in names)
    return sorted(found)


def _class_files(folder: Path, label: int, root: Path) -> list[ImageFile]:
    """Every image under one class folder, sorted; hidden files are left out, a file of
    an unknown format is an error."""
    found = []
    for path in _files_under(folder):
        inside = path.relative_to(folder)
        if any(part.startswith(".") for part in inside.parts):
            continue
        kind = image_format(path)
        if kind is None:
            raise unknown_format(path)
        found.append((path.relative_to(root).as_posix(), label, kind, None))
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
    return {relative for files in found.values() for relative, *_ in files}


def _decode(root: Path, files: list[ImageFile], classes: list[str], config: Config,
            notice: Notice, skipped: list[str]) -> Dataset:
    """Decode, fit and stack the images; unreadable ones are skipped with a warning (and
    added to ``skipped``), or with ``strict`` stop the run."""
    images = torch.empty(len(files), config.n_pixels)
    kept: list[tuple[str, int, str | None]] = []
    for relative, label, kind, group in files:
        try:
            pixels = read_image(root / relative, kind)
        except UnreadableImage as exc:
            if config.strict:
                raise SnnctlError(f"{exc} (strict: true; set strict: false to skip unreadable images)") from None
            notice(WarningText(f"skipped {exc}"))
            skipped.append(relative)
            continue
        images[len(kept)] = fit(pixels, config.input_size, config.resize)
        kept.append((relative, label, group))
    labels = torch.tensor([label for _, label, _ in kept], dtype=torch.int64)
    return Dataset(images[:len(kept)], labels, list(classes), [str(root / relative) for relative, _, _ in kept],
                   dataset_groups([group for _, _, group in kept]))


def _notice_dim_images(train: Dataset, root: Path, config: Config, notice: Notice) -> None:
    """Says so when the training images' brightest pixels stay low in the grey range, as
    16-bit files holding 12- or 14-bit values do (read as a fraction of 65535), and
    ``intensity`` does not make up for it: grey levels go in as they are, so every input
    then spikes rarely and STDP has little to learn from. Rates are grey level times
    ``intensity``, so the notice gives the intensity that makes up for it: where no pixel
    exceeds a smaller bit depth (:data:`STORED_BITS`), the rates the files would have with
    all 16 bits; else the one that brings the median image's brightest pixel to full
    rate. Either is one gain for every image, which keeps a finding brighter than the tissue
    of other images (a per-image stretch does not; docs/mammo.md). With ``gamma: G`` a grey
    level g spikes at ``g ** G`` times ``intensity``, and the gain is raised to the power G."""
    if len(train) == 0:
        return
    brightest = float(train.images.amax(dim=1).median())
    peak = brightest ** config.gamma  # its rate per unit of intensity
    fastest = peak * config.intensity  # Hz, the median image's brightest pixel
    if peak >= DIM_IMAGE or fastest >= DIM_IMAGE * DEFAULTS["intensity"]:
        return
    largest = float(train.images.max())
    bits = next((b for b in STORED_BITS if largest <= (2**b - 1) / SIXTEEN_BITS + 1e-6), None)
    if bits is None:
        guess, gain, effect = "dim films?", 1 / brightest, "brings the median image's brightest pixel to full rate"
    else:
        guess = f"16-bit files holding {bits}-bit values? no pixel is above {2**bits - 1} of 65535"
        gain, effect = 2 ** (16 - bits), f"gives them the rates of 16-bit files at intensity {config.intensity:g}"
    gain = gain ** config.gamma
    notice(WarningText(f"{root}: the training images' brightest pixels reach only {brightest:.3f} of the grey "
                       f"range ({guess}), so no input spikes faster than {fastest:.0f} Hz; "
                       f"intensity: {config.intensity * gain:.0f} {effect} (normalize: percentile stretches each "
                       f"image instead, input_length scales it)"))


def decode_splits(root: Path, lists: dict[str, list[ImageFile]], classes: list[str],
                  config: Config, notice: Notice) -> tuple[Dataset, Dataset, list[str]]:
    """Both splits decoded and encoded (:mod:`snnctl.data.encodings`), with one closing
    count of the skipped images; every class must keep a training image and the test
    split an image."""
    total = sum(len(files) for files in lists.values())
    notice(f"decoding {total} images from {root}")
    skipped: list[str] = []
    decoded = [_decode(root, lists[split], classes, config, notice, skipped) for split in SPLITS]
    if config.normalize == "none" and config.input_length is None:  # either brings dim images up
        _notice_dim_images(decoded[0], root, config, notice)
    train, test = (encode_dataset(dataset, config) for dataset in decoded)
    if skipped:
        notice(WarningText(f"skipped {len(skipped)} of {total} images that could not be read "
                           f"(strict: true makes them errors)"))
    for label, name in enumerate(classes):
        if not (train.labels == label).any():
            raise SnnctlError(f"{root}: class {name!r} has no readable training image")
    if len(test) == 0:
        raise SnnctlError(f"{root}: no readable held-out image")
    return train, test, skipped


# Settings the decoded images depend on besides the file lists (recorded in split.json).
IMAGE_SETTINGS = ("input_size", "resize", "deskew", "normalize", "clahe", "gamma", "encoding", "input_length")


def image_settings(config: Config) -> dict[str, object]:
    """The settings the decoded images of ``config`` depend on: size and resize mode, and
    the encoding keys when they change the images."""
    settings: dict[str, object] = {"input_size": config.input_size, "resize": config.resize}
    if not is_plain(config):
        settings.update(normalize=config.normalize, clahe=config.clahe, encoding=config.encoding)
    # each absent otherwise, as in the split.json files made before it
    if config.deskew:
        settings["deskew"] = True
    if config.gamma != 1.0:
        settings["gamma"] = config.gamma
    if config.input_length is not None:
        settings["input_length"] = config.input_length
    return settings


def _counts(labels: torch.Tensor, classes: list[str]) -> str:
    counts = torch.bincount(labels, minlength=len(classes)).tolist()
    return ", ".join(f"{name}: {count}" for name, count in zip(classes, counts))


def _with_groups(found: dict[str, list[ImageFile]], classes: list[str], config: Config) -> dict[str, list[ImageFile]]:
    """The file lists with each file's group (and, from a group file, its label) filled
    in; unchanged without ``group`` or ``group_file``."""
    if not config.grouped:
        return found
    depth = 0 if "all" in found else 1
    every = [file for files in found.values() for file in files]
    if config.group is not None:
        names = groups_from_regex(config.group, [inside_class_folder(relative, depth) for relative, *_ in every])
        labels = [label for _, label, _, _ in every]
    else:
        names, overrides = groups_from_file(config.group_file, [relative for relative, *_ in every], classes)
        labels = [label if new is None else new for (_, label, _, _), new in zip(every, overrides)]
    relabelled = [(relative, label, kind, name) for (relative, _, kind, _), name, label in zip(every, names, labels)]
    lists, start = {}, 0
    for split, files in found.items():
        lists[split] = relabelled[start:start + len(files)]
        start += len(files)
    return lists


def _groups_on_both_sides(lists: dict[str, list[ImageFile]]) -> set[str]:
    train, test = ({group for *_, group in lists[split]} for split in SPLITS)
    return (train & test) - {None}


def _split_pool(files: list[ImageFile], config: Config, root: Path, classes: list[str],
                notice: Notice) -> tuple[dict[str, list[ImageFile]], str]:
    """Split the images of the class folders: by fold or grouped holdout when groups or
    folds are set (:func:`snnctl.data.groups.split_for`), else the stratified holdout."""
    labels = torch.tensor([label for _, label, _, _ in files])
    if not config.grouped:
        suggestion = looks_grouped([inside_class_folder(relative, 0) for relative, *_ in files])
        if suggestion:
            notice(f"{root}: the file names look like they carry patient ids, and this split is made without "
                   f"groups, so one patient's images can fall on both sides; set group: {yaml_quoted(suggestion)} "
                   f"(or group_file) to keep them together (docs/mammo.md)")
    if config.grouped or config.fold is not None:
        groups = [group for *_, group in files] if config.grouped else None
        train_idx, test_idx, held = split_for(config, labels, groups)
    else:
        train_idx, test_idx = stratified_split(labels, round(config.test_fraction * len(files)), config.seed)
        held = f"{config.test_fraction * 100:g}% of each class held out"
    lists = {"train": [files[i] for i in train_idx.tolist()], "test": [files[i] for i in test_idx.tolist()]}
    how = f"{len(files)} images in the class folders of {root} ({_counts(labels, classes)}); {held} (seed {config.seed})"
    return lists, how


def _group_counts(lists: dict[str, list[ImageFile]], config: Config) -> dict[str, object] | None:
    """What split.json records of the groups: where they came from and how many each side has."""
    if not config.grouped:
        return None
    source = {"regex": config.group} if config.group is not None else {"file": str(Path(config.group_file).resolve())}
    return {**source, **{split: len({group for *_, group in lists[split]}) for split in SPLITS}}


def _notice_folders_beside_splits(root: Path, notice: Notice) -> None:
    """Say which folders beside train/ and test/ are not read: a val/ folder there is not a
    validation split, and its images would otherwise be left out without a word."""
    beside = sorted(f"{path.name}/" for path in root.iterdir()
                    if path.is_dir() and path.name not in SPLITS and not path.name.startswith("."))
    if beside:
        notice(WarningText(f"{root}: only train/ and test/ are read; not the folder(s) beside them: "
                           f"{', '.join(beside)}"))


def load_image_folders(config: Config, notice: Notice, check_classes: bool = True) -> Splits:
    """The MAMMO training and held-out images of ``config.data_dir``.

    Without train/ and test/ folders, the images are split: with ``group`` or
    ``group_file`` (or ``fold``), by :func:`snnctl.data.groups.split_for`, a patient's
    images on one side; otherwise a split stratified by class holds out
    ``test_fraction`` of each class. The split is seeded by ``seed``; ``n_train`` and
    ``n_test`` then keep a seeded subset, before anything is decoded. With
    ``check_classes``, the class folders must be ``n_classes``, checked before that too.
    """
    root = _data_root(config.data_dir)
    classes, found = _discover(root)
    if check_classes:
        check_class_count(config, classes)
    found = _with_groups(found, classes, config)
    to_split = "all" in found
    if to_split:
        lists, how = _split_pool(found["all"], config, root, classes, notice)
    elif config.folds is not None:
        raise ConfigError(f"folds: cross-validation splits one pool of class folders, but {root} is already "
                          f"split into train/ and test/ (move their class folders together)")
    else:
        lists = found
        how = f"the train/ and test/ class folders of {root}"
        _notice_folders_beside_splits(root, notice)
        shared = _groups_on_both_sides(lists)
        if shared:
            notice(f"{root}: {len(shared)} group(s) have images in both train/ and test/ (e.g. {sorted(shared)[0]!r})")
    for split, n in (("train", config.n_train), ("test", config.n_test)):
        keep = limit_indices(len(lists[split]), n, limit_seed(config.seed, split))
        lists[split] = [lists[split][i] for i in keep.tolist()]
    train, test, skipped = decode_splits(root, lists, classes, config, notice)
    # how the split was made; manifest.write_manifest adds the file lists
    manifest = {
        "data_dir": str(root), "layout": "class folders" if to_split else "train/test folders",
        "seed": config.seed, "test_fraction": config.test_fraction if to_split else None,
        **image_settings(config), "classes": classes, "skipped": skipped,
    }
    for key in ("folds", "fold"):
        if getattr(config, key) is not None:
            manifest[key] = getattr(config, key)
    groups = _group_counts(lists, config)
    if groups is not None:
        manifest["groups"] = groups
    origin = f"{how}; {len(train)} train / {len(test)} test" + (f", {len(skipped)} unreadable skipped" if skipped else "")
    return Splits(train, test, origin, manifest)
