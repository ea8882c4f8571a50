"""Image files as gray values: PNG, TIFF, JPEG, PGM and BMP through Pillow, DICOM through
pydicom (PS3.3 C.11: modality LUT or rescale, then VOI LUT or window; MONOCHROME1
inverted), each recognised by its signature bytes before its suffix. Gray values are
scaled by the real bit depth of the file into [0, 1], then made ``input_size`` square by
squashing or by padding (:func:`fit`). docs/mammo.md lists what each format gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from snnctl.data.dataset import resize
from snnctl.errors import SnnctlError

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


class UnreadableImage(SnnctlError):
    """An image file that cannot be decoded: skipped with a warning, an error with ``strict``."""


def unknown_format(path: Path) -> SnnctlError:
    """The error of a file whose bytes and name match no format snnctl reads."""
    return SnnctlError(f"{path}: not an image snnctl reads ({FORMAT_NAMES}); move it out of the data folder")


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
        raise unknown_format(path)
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
    return resize(image.unsqueeze(0), size).reshape(-1)
