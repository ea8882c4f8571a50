"""Image folders for the MAMMO task: find, decode, split, and record the split of a run.

Layouts: ``DATA_DIR/<class>/<images>``, split here by :func:`snnctl.data.stratified_split`
(seeded, ``test_fraction`` held out from each class), or ``DATA_DIR/train/<class>`` and
``DATA_DIR/test/<class>`` when the data is already split. Class names are the folder
names, sorted. Formats: PNG, TIFF, JPEG, PGM and BMP through Pillow, DICOM through pydicom
(PS3.3 C.11: modality LUT or rescale, then VOI LUT or window; MONOCHROME1 inverted), each
recognised by its signature bytes before its suffix. Gray values are scaled by the real
bit depth of the file into [0, 1], then made ``input_size`` square by squashing or by
padding. Every image is decoded once per run: training keeps the tensors in memory, and
the run directory keeps the split (``split.json``) and the decoded images
(``split-images.safetensors``) so that ``evaluate`` uses exactly the same held-out images
without decoding them again. docs/mammo.md describes the layouts and both files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from snnctl import data
from snnctl.config import Config
from snnctl.data import Notice
from snnctl.errors import ConfigError, SnnctlError
from snnctl.files import write_atomic
from snnctl.seeds import limit_seed

SUFFIXES = {
    ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG",
    ".pgm": "PGM", ".bmp": "BMP", ".dcm": "DICOM", ".dicom": "DICOM",
}
# (offset, bytes, format): a file's own bytes win over its name (DICOM files often have none).
SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"II*\x00", "TIFF"), (0, b"MM\x00*", "TIFF"),
    (0, b"\xff\xd8\xff", "JPEG"), (0, b"P2", "PGM"), (0, b"P5", "PGM"), (0, b"BM", "BMP"),
    (128, b"DICM", "DICOM"),
)
HEADER_BYTES = 132
FORMAT_NAMES = "PNG, TIFF, JPEG, PGM, BMP or DICOM"
TIFF_PHOTOMETRIC = 262  # tag; value 0 = WhiteIsZero
SIXTEEN_BITS = 65535.0

MANIFEST_NAME = "split.json"
CACHE_NAME = "split-images.safetensors"
MANIFEST_FORMAT = "snnctl-split"
CACHE_FORMAT = "snnctl-split-images"
FORMAT_VERSION = 1
SPLITS = ("train", "test")


# One image file: path relative to the data folder, label, format (None: found when read).
ImageFile = tuple[str, int, str | None]


class UnreadableImage(SnnctlError):
    """An image file that cannot be decoded: skipped with a warning, an error with ``strict``."""


def _unknown_format(path: Path) -> SnnctlError:
    return SnnctlError(f"{path}: not an image snnctl reads ({FORMAT_NAMES}); move it out of the data folder")


# ---------------------------------------------------------------- decoding


def image_format(path: Path) -> str | None:
    """PNG, TIFF, JPEG, PGM, BMP or DICOM, by signature then suffix; None when neither is known."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER_BYTES)
    except OSError:
        head = b""  # the decoder reports why the file cannot be read
    for offset, signature, name in SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            return name
    return SUFFIXES.get(path.suffix.lower())


def read_image(path: Path, kind: str | None = None) -> np.ndarray:
    """One image as gray values in [0, 1], ``[height, width]`` float32.

    ``kind`` is the format when already known (:func:`image_format`). A file of no known
    format is a :class:`SnnctlError`; a known format that does not decode is an
    :class:`UnreadableImage`.
    """
    kind = kind or image_format(path)
    if kind is None:
        raise _unknown_format(path)
    try:
        pixels = _read_dicom(path) if kind == "DICOM" else _read_raster(path)
    except UnreadableImage:
        raise
    except Exception as exc:  # decoders of broken files raise anything: OSError, SyntaxError, struct.error...
        raise UnreadableImage(f"{path}: cannot read {kind} image ({type(exc).__name__}: {exc})") from None
    if pixels.ndim != 2 or pixels.size == 0:
        raise UnreadableImage(f"{path}: {kind} image of shape {list(pixels.shape)} is not one gray image")
    return pixels.astype(np.float32)


def _read_raster(path: Path) -> np.ndarray:
    """PNG, TIFF, JPEG, PGM, BMP through Pillow, scaled by the bit depth of the file.

    Pillow gives 16-bit gray (PNG, TIFF) as mode ``I;16`` and PGM with a maxval above
    255 as mode ``I`` already scaled to 16 bits; both are divided by 65535, never
    converted to 8 bits (which clips every value above 255). 1, 2 and 4-bit PNG and PGM
    with a maxval below 255 arrive as 8-bit ``L``; colour is converted to luminance
    (ITU-R 601-2).
    """
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode == "F":
            raise UnreadableImage(f"{path}: 32-bit float pixels have no bit depth to scale by; save it with 8 or 16 bits")
        if not image.mode.startswith("I"):
            return np.asarray(image.convert("L"), dtype=np.float64) / 255.0
        values = np.asarray(image).astype(np.float64)
        if values.min() < 0 or values.max() > SIXTEEN_BITS:
            raise UnreadableImage(f"{path}: pixel values beyond 16 bits ({values.min():g}..{values.max():g})")
        pixels = values / SIXTEEN_BITS
        # Pillow inverts 8-bit WhiteIsZero TIFFs itself, but not 16-bit ones.
        if getattr(image, "tag_v2", {}).get(TIFF_PHOTOMETRIC) == 0:
            pixels = 1.0 - pixels
        return pixels


def _read_dicom(path: Path) -> np.ndarray:
    """DICOM pixel data as displayed (PS3.3 C.11): stored values -> modality LUT or
    rescale slope/intercept -> VOI LUT or window (the first one) -> [0, 1]; MONOCHROME1
    (where 0 is white) is inverted so that dense tissue is bright. The first frame of a
    multi-frame image."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

    dataset = pydicom.dcmread(path, force=True)
    if "PixelData" not in dataset:
        raise UnreadableImage(f"{path}: no DICOM pixel data")
    photometric = str(dataset.get("PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnreadableImage(f"{path}: PhotometricInterpretation {photometric or '(none)'}: "
                              f"only MONOCHROME1 and MONOCHROME2 images are read")
    stored = dataset.pixel_array
    if stored.ndim == 3:
        stored = stored[0]
    values = apply_modality_lut(stored, dataset)
    low, high = _modality_range(dataset)
    if dataset.get("VOILUTSequence"):
        # A VOI LUT indexes by integer value and outputs its own bit depth.
        values = apply_voi(np.rint(values).astype(np.int64), dataset)
        low, high = 0.0, 2.0 ** int(dataset.VOILUTSequence[0].LUTDescriptor[2]) - 1
    elif "WindowCenter" in dataset and "WindowWidth" in dataset:
        values = apply_windowing(values, dataset)
    pixels = np.clip((np.asarray(values, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    return 1.0 - pixels if photometric == "MONOCHROME1" else pixels


def _modality_range(dataset) -> tuple[float, float]:
    """Values the modality transform can give: the stored range (BitsStored, signed or
    not) through the rescale, or [0, 2^bits - 1] of a modality LUT. pydicom's windowing
    maps onto this same range (PS3.3 C.11.2.1.2), so one scaling serves both."""
    if dataset.get("ModalityLUTSequence"):
        return 0.0, 2.0 ** int(dataset.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    bits = int(dataset.BitsStored)
    if int(dataset.PixelRepresentation) == 0:
        low, high = 0.0, 2.0 ** bits - 1
    else:
        low, high = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    if "RescaleSlope" in dataset and "RescaleIntercept" in dataset:
        slope, intercept = float(dataset.RescaleSlope), float(dataset.RescaleIntercept)
        low, high = low * slope + intercept, high * slope + intercept
    return low, high


def fit(pixels: np.ndarray, size: int, mode: str) -> torch.Tensor:
    """A gray image as ``size * size`` values: ``squash`` resizes it to the square as the
    original did; ``pad`` first centres it on a black square, keeping the breast's shape."""
    image = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
    if mode == "pad":
        height, width = image.shape
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        image = torch.nn.functional.pad(image, (left, side - width - left, top, side - height - top))
    return data.resize(image.unsqueeze(0), size).reshape(-1)


# ---------------------------------------------------------------- folders


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
            raise _unknown_format(path)
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


def _decode(root: Path, files: list[ImageFile], classes: list[str], config: Config,
            notice: Notice, skipped: list[str]) -> data.Dataset:
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
            notice(f"skipped {exc}")
            skipped.append(relative)
            continue
        images[len(kept)] = fit(pixels, config.input_size, config.resize)
        kept.append((relative, label))
    labels = torch.tensor([label for _, label in kept], dtype=torch.int64)
    return data.Dataset(images[:len(kept)], labels, list(classes), [str(root / relative) for relative, _ in kept])


def _decode_splits(root: Path, lists: dict[str, list[ImageFile]], classes: list[str],
                   config: Config, notice: Notice) -> tuple[data.Dataset, data.Dataset, list[str]]:
    """Both splits decoded, with one closing count of the skipped images; every class
    must keep a training image and the test split an image."""
    total = sum(len(files) for files in lists.values())
    notice(f"decoding {total} images from {root}")
    skipped: list[str] = []
    train, test = (_decode(root, lists[split], classes, config, notice, skipped) for split in SPLITS)
    if skipped:
        notice(f"skipped {len(skipped)} of {total} images that could not be read (strict: true makes them errors)")
    for label, name in enumerate(classes):
        if not (train.labels == label).any():
            raise SnnctlError(f"{root}: class {name!r} has no readable training image")
    if len(test) == 0:
        raise SnnctlError(f"{root}: no readable held-out image")
    return train, test, skipped


def _counts(labels: torch.Tensor, classes: list[str]) -> str:
    counts = torch.bincount(labels, minlength=len(classes)).tolist()
    return ", ".join(f"{name}: {count}" for name, count in zip(classes, counts))


def load_image_folders(config: Config, notice: Notice) -> data.Splits:
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
        train_idx, test_idx = data.stratified_split(labels, round(config.test_fraction * len(files)), config.seed)
        lists = {"train": [files[i] for i in train_idx.tolist()], "test": [files[i] for i in test_idx.tolist()]}
        how = (f"{len(files)} images in the class folders of {root} ({_counts(labels, classes)}); "
               f"{config.test_fraction * 100:g}% of each class held out (seed {config.seed})")
    else:
        lists = found
        how = f"the train/ and test/ class folders of {root}"
    for split, n in (("train", config.n_train), ("test", config.n_test)):
        keep = data.limit_indices(len(lists[split]), n, limit_seed(config.seed, split))
        lists[split] = [lists[split][i] for i in keep.tolist()]
    train, test, skipped = _decode_splits(root, lists, classes, config, notice)
    manifest = {
        "format": MANIFEST_FORMAT, "version": FORMAT_VERSION, "data_dir": str(root),
        "layout": "class folders" if to_split else "train/test folders",
        "seed": config.seed, "test_fraction": config.test_fraction if to_split else None,
        "input_size": config.input_size, "resize": config.resize, "classes": classes, "skipped": skipped,
    }
    origin = f"{how}; {len(train)} train / {len(test)} test" + (f", {len(skipped)} unreadable skipped" if skipped else "")
    return data.Splits(train, test, origin, manifest)


# ---------------------------------------------------------------- the run's manifest


def _entries(dataset: data.Dataset, root: Path) -> list[dict[str, str]]:
    return [{"file": Path(source).relative_to(root).as_posix(), "class": dataset.class_names[label]}
            for source, label in zip(dataset.sources, dataset.labels.tolist())]


def _digest(manifest: dict) -> str:
    """Ties the decoded images to the file lists they came from."""
    lists = json.dumps({split: manifest[split] for split in SPLITS}, sort_keys=True)
    return hashlib.sha256(lists.encode()).hexdigest()


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


def write_manifest(run_dir: Path, splits: data.Splits) -> None:
    """Write the split (``split.json``: every file, in order, with its class) and the
    decoded images (``split-images.safetensors``) into the run directory, atomically."""
    from safetensors.torch import save

    root = Path(splits.manifest["data_dir"])
    manifest = {**splits.manifest, **{split: _entries(getattr(splits, split), root) for split in SPLITS}}
    write_atomic(Path(run_dir) / MANIFEST_NAME, _manifest_text(manifest).encode())
    tensors = {f"{split}.{part}": getattr(getattr(splits, split), part).contiguous()
               for split in SPLITS for part in ("images", "labels")}
    metadata = {"format": CACHE_FORMAT, "version": str(FORMAT_VERSION), "input_size": str(manifest["input_size"]),
                "resize": manifest["resize"], "split_sha256": _digest(manifest)}
    write_atomic(Path(run_dir) / CACHE_NAME, save(tensors, metadata=metadata))


def _read_manifest(path: Path) -> tuple[dict, dict[str, list[ImageFile]]]:
    """The manifest and its file lists; one error line if it is not readable."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        if manifest.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"version {manifest['version']} is newer than this snnctl reads ({FORMAT_VERSION})")
        classes = manifest["classes"]
        lists = {split: [(entry["file"], classes.index(entry["class"]), None) for entry in manifest[split]]
                 for split in SPLITS}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SnnctlError(f"{path}: not a readable split manifest ({type(exc).__name__}: {exc})") from None
    return manifest, lists


def _read_cache(path: Path, manifest: dict, config: Config) -> dict[str, torch.Tensor] | None:
    """The decoded images, if they were made from these file lists with these settings."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as reader:
            metadata = reader.metadata() or {}
            wanted = {"format": CACHE_FORMAT, "version": str(FORMAT_VERSION), "input_size": str(config.input_size),
                      "resize": config.resize, "split_sha256": _digest(manifest)}
            if any(metadata.get(key) != value for key, value in wanted.items()):
                return None
            tensors = {name: reader.get_tensor(name) for name in reader.keys()}
    except (SafetensorError, OSError, RuntimeError):
        return None
    for split in SPLITS:
        images, labels = tensors.get(f"{split}.images"), tensors.get(f"{split}.labels")
        if images is None or labels is None or tuple(images.shape) != (len(manifest[split]), config.n_inputs):
            return None
    return tensors


def load_manifest(run_dir: Path, config: Config, notice: Notice) -> data.Splits | None:
    """The exact training and held-out images of the run in ``run_dir``, from its
    ``split.json``; None when the run has none (MNIST, or not trained by snnctl).

    The images come from ``split-images.safetensors`` when it matches the manifest,
    ``input_size`` and ``resize``; otherwise the listed files are decoded again, from
    the data folder the manifest names (unreadable ones skipped as in training).
    """
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    manifest, lists = _read_manifest(path)
    root, classes = Path(manifest["data_dir"]), list(manifest["classes"])
    cached = _read_cache(Path(run_dir) / CACHE_NAME, manifest, config)
    if cached is not None:
        train, test = (data.Dataset(cached[f"{split}.images"], cached[f"{split}.labels"].long(), classes,
                                    [str(root / relative) for relative, _, _ in lists[split]]) for split in SPLITS)
    else:
        notice(f"{Path(run_dir) / CACHE_NAME}: no decoded images for input_size {config.input_size}, "
               f"resize {config.resize}; decoding the files listed in {path}")
        train, test, _ = _decode_splits(root, lists, classes, config, notice)
    origin = f"the {manifest.get('layout', 'image folders')} split of {root} recorded in {path}"
    header = {key: value for key, value in manifest.items() if key not in SPLITS}
    return data.Splits(train, test, origin, {**header, "input_size": config.input_size, "resize": config.resize})
