"""The split of a MAMMO run, kept in its run directory so that later commands use
exactly its images: ``split.json`` lists every file of each split, in order, with its
class; ``split-images.safetensors`` holds the decoded images, so that ``evaluate`` does
not decode them again. docs/mammo.md describes both files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

import torch

from snnctl.config import Config
from snnctl.data.cache import read_tensors
from snnctl.data.dataset import SPLITS, Dataset, Notice, Splits
from snnctl.data.folders import IMAGE_SETTINGS, ImageFile, dataset_groups, decode_splits, image_files, image_settings
from snnctl.errors import SnnctlError
from snnctl.files import read_versioned_json, write_atomic

MANIFEST_NAME = "split.json"
SPLIT_IMAGES_NAME = "split-images.safetensors"
MANIFEST_FORMAT = "snnctl-split"
SPLIT_IMAGES_FORMAT = "snnctl-split-images"
FORMAT_VERSION = 1
MANIFEST_WHAT = "split manifest"


def _entries(dataset: Dataset, root: Path) -> list[dict[str, str]]:
    entries = [{"file": Path(source).relative_to(root).as_posix(), "class": dataset.class_names[label]}
               for source, label in zip(dataset.sources, dataset.labels.tolist())]
    for entry, group in zip(entries, dataset.groups):
        entry["group"] = group
    return entries


def _digest(manifest: dict) -> str:
    """Ties the decoded images to the file lists they came from."""
    lists = json.dumps({split: manifest[split] for split in SPLITS}, sort_keys=True)
    return hashlib.sha256(lists.encode()).hexdigest()


def _split_images_key(manifest: dict, settings: dict[str, object]) -> dict[str, str]:
    """The metadata of the decoded images: these file lists, decoded and encoded with
    these settings (:func:`~snnctl.data.folders.image_settings`)."""
    return {"format": SPLIT_IMAGES_FORMAT, "version": str(FORMAT_VERSION),
            **{key: str(value) for key, value in settings.items()}, "split_sha256": _digest(manifest)}


def _manifest_text(manifest: dict) -> str:
    """JSON with one line per key and per listed file, for people who read or diff it."""
    lines = []
    for key, value in manifest.items():
        if key in SPLITS and value:
            value_text = "[\n" + ",\n".join(f"  {json.dumps(entry)}" for entry in value) + "\n ]"
        else:
            value_text = json.dumps(value)
        lines.append(f" {json.dumps(key)}: {value_text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_manifest(run_dir: Path, splits: Splits) -> None:
    """Write the split (``split.json``: how it was made, then every file, in order, with
    its class) and the decoded images (``split-images.safetensors``) into the run
    directory, atomically."""
    from safetensors.torch import save

    root = Path(splits.manifest["data_dir"])
    manifest = {"format": MANIFEST_FORMAT, "version": FORMAT_VERSION, **splits.manifest,
                **{split: _entries(getattr(splits, split), root) for split in SPLITS}}
    write_atomic(Path(run_dir) / MANIFEST_NAME, _manifest_text(manifest).encode())
    tensors = {f"{split}.{part}": getattr(getattr(splits, split), part).contiguous()
               for split in SPLITS for part in ("images", "labels")}
    metadata = _split_images_key(manifest, {key: manifest[key] for key in IMAGE_SETTINGS if key in manifest})
    path = Path(run_dir) / SPLIT_IMAGES_NAME
    if read_tensors(path, metadata, header_only=True) is not None:
        return  # these images already (a resumed run read them from this file)
    write_atomic(path, save(tensors, metadata=metadata))


# A manifest as read: the document, its data folder, classes and file lists.
Recorded = tuple[dict, Path, list[str], dict[str, list[ImageFile]]]


def _read_manifest(path: Path) -> Recorded:
    """The manifest, its data folder, classes and file lists; one error line if it is not readable."""
    manifest = read_versioned_json(path, MANIFEST_FORMAT, FORMAT_VERSION, MANIFEST_WHAT)
    try:
        root, classes = Path(manifest["data_dir"]), list(manifest["classes"])
        lists = {split: [(entry["file"], classes.index(entry["class"]), None, entry.get("group"))
                         for entry in manifest[split]]
                 for split in SPLITS}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SnnctlError(f"{path}: not a readable {MANIFEST_WHAT} ({type(exc).__name__}: {exc})") from None
    for files in lists.values():
        for relative, *_ in files:
            _check_inside(relative, root, path)
    return manifest, root, classes, lists


def _check_inside(relative: object, root: Path, path: Path) -> None:
    """A listed file is a path inside the data folder: relative, with no ``..``."""
    inside = isinstance(relative, str) and relative and "\\" not in relative and "\0" not in relative
    if not inside or PurePosixPath(relative).is_absolute() or ".." in PurePosixPath(relative).parts:
        raise SnnctlError(f"{path}: lists {relative!r}, not a file inside the data folder {root}")


def _read_split_images(path: Path, manifest: dict, config: Config) -> dict[str, torch.Tensor] | None:
    """The decoded images, if they were made from these file lists with these settings."""
    tensors = read_tensors(path, _split_images_key(manifest, image_settings(config)))
    if tensors is None:
        return None
    for split in SPLITS:
        images, labels = tensors.get(f"{split}.images"), tensors.get(f"{split}.labels")
        if images is None or labels is None or tuple(images.shape) != (len(manifest[split]), config.n_image_inputs):
            return None
    return tensors


def load_manifest(run_dir: Path, config: Config, notice: Notice) -> Splits | None:
    """The exact training and held-out images of the run in ``run_dir``, from its
    ``split.json``; None when the run has none (MNIST, or not trained by snnctl).

    The images come from ``split-images.safetensors`` when it matches the manifest,
    ``input_size``, ``resize`` and the encoding keys; otherwise the listed files are decoded again, from
    the data folder the manifest names (unreadable ones skipped as in training).
    """
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    return _recorded_splits(path, _read_manifest(path), config, notice)


def _recorded_splits(path: Path, read: Recorded, config: Config, notice: Notice) -> Splits:
    """The splits of the manifest at ``path``, as :func:`_read_manifest` read it."""
    manifest, root, classes, lists = read
    images_path = path.parent / SPLIT_IMAGES_NAME
    decoded = _read_split_images(images_path, manifest, config)
    if decoded is not None:
        train, test = (Dataset(decoded[f"{split}.images"], decoded[f"{split}.labels"].long(), classes,
                               [str(root / relative) for relative, *_ in lists[split]],
                               dataset_groups([group for *_, group in lists[split]]))
                       for split in SPLITS)
    else:
        settings = ", ".join(f"{key} {value}" for key, value in image_settings(config).items())
        notice(f"{images_path}: no decoded images for {settings}; "
               f"decoding the files listed in {path}")
        train, test, _ = decode_splits(root, lists, classes, config, notice)
    origin = f"the {manifest.get('layout', 'image folders')} split of {root} recorded in {path}"
    settings = image_settings(config)
    # the recorded keys keep their places (a resumed run writes the same split.json again)
    header = {key: value for key, value in manifest.items()
              if key not in SPLITS and (key not in IMAGE_SETTINGS or key in settings)}
    return Splits(train, test, origin, {**header, **settings})


def load_recorded_split(run_dir: Path, config: Config, notice: Notice) -> Splits | None:
    """The split of the run in ``run_dir`` for that run to continue (``train --resume``):
    :func:`load_manifest`, once every listed file is found still in the data folder. A
    listed file that is gone is an error naming it; files added since are left out, with
    a notice. None when the run recorded no split."""
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    read = _read_manifest(path)
    manifest, root, _, lists = read
    present = image_files(str(root))
    listed = [relative for files in lists.values() for relative, *_ in files]
    missing = [relative for relative in listed if relative not in present]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SnnctlError(f"{root / missing[0]}: listed in the run's split {path} but no longer in the data "
                          f"folder{more}; restore it, or start a new run")
    known = set(listed) | set(manifest.get("skipped") or [])
    added = sorted(present - known)
    if added and config.n_train is None and config.n_test is None:
        notice(f"{len(added)} image(s) added to {root} since the run started (e.g. {added[0]}) are left out: "
               f"a resumed run keeps its split ({path})")
    return _recorded_splits(path, read, config, notice)
