"""Synthetic mammogram-like image folders, for tests and benchmarks.

There is no openly licensed mammography set to ship, so snnctl makes folders that have
what makes real ones hard: breast tissue whose texture is mid-grey and low in contrast,
patients with two to four views, the views of one breast sharing its tissue and its
finding (as a craniocaudal and a mediolateral view show the same lesion), so that a
patient's images are alike and a split by image flatters, three unbalanced classes whose
findings are faint and small, and 8- or 16-bit files. The classes follow the BI-RADS
lexicon loosely: ``normal`` (tissue only), ``benign`` (a round, well-circumscribed mass
or a few coarse, scattered calcifications) and ``malignant`` (an irregular, spiculated
mass or a tight cluster of fine calcifications).

With ``patches`` each image is instead a square patch of tissue cut around the finding
(for ``normal``, anywhere), as public sets of mammogram patches are made: no air, no
skin line, the finding near the centre and larger in the frame. With ``shapes`` images
are not square: views are taller than wide and patches are rectangles of varied shapes
(:func:`cut_to_shape`), as in real sets.

The layout is the one snnctl reads: ``root/<class>/P0001_L_CC.png``, the patient id first
in each file name, so ``group: '^(P\\d+)_'`` keeps a patient's views on one side of a split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = ("normal", "benign", "malignant")
VIEWS = ("L_CC", "L_MLO", "R_CC", "R_MLO")
# A finding in a patch cut around it is this many times larger, in units of the image,
# than in a whole view.
PATCH_SCALE = 2.0
# How much of a view's tissue texture is its breast's (the rest is the view's own): two
# projections of one breast overlap the same glands differently.
SHARED_TISSUE = 0.8


@dataclass(frozen=True)
class Breast:
    """What the views of one breast share: the noise its tissue texture is made of, and
    the seed of its finding's kind, size and shape (where in the image it lies is each
    view's own)."""

    tissue_noise: np.ndarray  # complex [size, size], standard normal parts
    finding_seed: int

    @classmethod
    def draw(cls, rng: np.random.Generator, size: int) -> "Breast":
        return cls(_spectrum_noise(rng, size), int(rng.integers(2**63)))


@dataclass(frozen=True)
class SyntheticMammoSpec:
    """What to generate. ``shares``: the fraction of patients in each class (unbalanced,
    as screening data is); ``contrast``: a finding's peak brightness over the tissue, in
    units of the image's grey range; ``bits``: 8, 16, or 0 for a mix of both, or 12 or 14:
    16-bit files holding 12- or 14-bit values, as many files converted from DICOM are (they
    read dim: docs/mammo.md, Formats);
    ``patches``: patches of tissue around the finding instead of whole views;
    ``exposure``: how much each patient's films differ in brightness and contrast
    (:func:`expose`; 0: every film exposed alike, 1: about as much as scanned films of
    different sites and years do); ``shapes``: images cut to the shapes real sets have
    (:func:`cut_to_shape`) instead of squares."""

    patients: int = 60
    size: int = 128
    shares: tuple[float, float, float] = (0.5, 0.3, 0.2)
    contrast: float = 0.25
    bits: int = 0
    seed: int = 0
    patches: bool = False
    exposure: float = 0.0
    shapes: bool = False


def _spectrum_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))


def _texture(rng: np.random.Generator, size: int, density: float, breast: Breast | None) -> np.ndarray:
    """Fibroglandular tissue: noise with a power spectrum falling as 1/f^3 (the exponent
    measured on mammograms, Burgess et al. 2001), scaled to [0, 1]; ``SHARED_TISSUE`` of
    its power from the ``breast``'s noise when given."""
    frequencies = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(frequencies, frequencies, indexing="ij"))
    radius[0, 0] = 1.0 / size
    noise = _spectrum_noise(rng, size)
    if breast is not None:
        noise = np.sqrt(SHARED_TISSUE) * breast.tissue_noise + np.sqrt(1.0 - SHARED_TISSUE) * noise
    spectrum = noise * radius ** -1.5
    tissue = np.real(np.fft.ifft2(spectrum))
    tissue = (tissue - tissue.min()) / (np.ptp(tissue) + 1e-12)
    return 0.35 + 0.25 * density + 0.2 * (tissue - 0.5)


def _breast_mask(rng: np.random.Generator, size: int, left: bool) -> np.ndarray:
    """A half-ellipse of varied size against the chest wall (left or right edge); the rest is air."""
    rows, cols = np.mgrid[0:size, 0:size] / (size - 1)
    x = cols if left else 1.0 - cols
    width, height = rng.uniform(0.7, 0.95), rng.uniform(0.4, 0.5)
    return ((x / width) ** 2 + ((rows - 0.5) / height) ** 2) <= 1.0


def _blob(size: int, centre: np.ndarray, radius: float, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * radius ** 2))


def _mass(rng: np.random.Generator, size: int, spiculated: bool, centre: np.ndarray, scale: float) -> np.ndarray:
    """A mass of varied size (``scale`` times 3 to 8% of the image): a smooth round one,
    or an irregular core with spicules."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    radius = scale * rng.uniform(0.03, 0.08) * size
    mass = _blob(size, centre, radius, rows, cols)
    if spiculated:
        angle = np.arctan2(rows - centre[0], cols - centre[1])
        distance = np.hypot(rows - centre[0], cols - centre[1])
        for direction in rng.uniform(0, 2 * np.pi, rng.integers(6, 12)):
            along = np.abs(np.angle(np.exp(1j * (angle - direction))))
            mass += 0.6 * np.exp(-(along * distance) ** 2 / 2.0) * np.exp(-distance / (3.5 * radius))
        mass *= 1.0 + 0.3 * rng.standard_normal(mass.shape).clip(-1, 1) * (mass > 0.2)
    return mass / mass.max()


def _calcifications(rng: np.random.Generator, size: int, clustered: bool, centre: np.ndarray,
                    scale: float) -> np.ndarray:
    """Bright specks one or two pixels wide: a tight cluster of fine ones, or a few coarse
    ones scattered over the breast (spread over ``scale`` times 4 or 20% of the image)."""
    specks = np.zeros((size, size))
    count = rng.integers(6, 14) if clustered else rng.integers(2, 5)
    spread = scale * (0.04 if clustered else 0.2) * size
    for point in centre + rng.normal(0, spread, (count, 2)):
        r, c = np.clip(point.astype(int), 1, size - 2)
        specks[r, c] = 1.0
        if not clustered:  # coarse: a 2 x 2 speck
            specks[r:r + 2, c:c + 2] = 1.0
    return specks


def mammogram(rng: np.random.Generator, spec: SyntheticMammoSpec, label: str, density: float,
              left: bool, breast: Breast | None = None) -> np.ndarray:
    """One view in [0, 1] (a patch of it with ``spec.patches``): tissue of the patient's
    ``density``, the class's finding, noise. The views of one ``breast`` share most of
    their tissue and the finding's kind, size and shape; without it, every draw is the view's."""
    size = spec.size
    image = _texture(rng, size, density, breast)
    # a patch is cut around its finding, which then fills more of the frame
    centre = (rng.uniform(0.4, 0.6, 2) if spec.patches else rng.uniform(0.3, 0.7, 2)) * size
    scale = PATCH_SCALE if spec.patches else 1.0
    shape = rng if breast is None else np.random.default_rng(breast.finding_seed)
    if label == "benign":
        finding = (_mass(shape, size, False, centre, scale) if shape.random() < 0.6
                   else _calcifications(shape, size, False, centre, scale))
        image += spec.contrast * finding
    elif label == "malignant":
        if shape.random() < 0.6:
            image += spec.contrast * _mass(shape, size, True, centre, scale)
        else:
            image += 2.0 * spec.contrast * _calcifications(shape, size, True, centre, scale)
    image += rng.normal(0, 0.01, image.shape)  # quantum noise of the detector
    if not spec.patches:
        image = np.where(_breast_mask(rng, size, left), image, 0.02)
    return image.clip(0.0, 1.0)


def _write(path: Path, image: np.ndarray, bits: int) -> None:
    """``image`` in [0, 1] as a PNG of ``bits`` (8; 12, 14 or 16 in a 16-bit file)."""
    from PIL import Image

    if bits == 8:
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path)
    else:
        Image.fromarray(np.round(image * (2**bits - 1)).astype(np.uint16)).save(path)


def expose(image: np.ndarray, rng: np.random.Generator, exposure: float) -> np.ndarray:
    """A film's own exposure and development: a gain, an offset and a gamma of the grey
    levels, drawn around none by ``exposure`` (at 1: gain 0.7 to 1.3, offset -0.1 to 0.1, gamma
    0.75 to 1.33). The views of one examination share them; other patients' films do not,
    so a grey level means different tissue in different patients."""
    gain = 1.0 + exposure * rng.uniform(-0.3, 0.3)
    offset = exposure * rng.uniform(-0.1, 0.1)
    gamma = np.exp(exposure * rng.uniform(-np.log(4 / 3), np.log(4 / 3)))
    return (offset + gain * image.clip(0.0, 1.0) ** gamma).clip(0.0, 1.0)


def cut_to_shape(image: np.ndarray, rng: np.random.Generator, patch: bool, left: bool) -> np.ndarray:
    """``image`` cut to a shape a real set gives. A whole view keeps its chest wall side
    (the left edge of a left breast) and 0.75 to 0.85 of its width: taller than wide, as
    a mammogram is. A patch keeps a centred rectangle 0.55 to 1.0 as wide as tall, or as
    tall as wide: patches cut around lesions of different sizes and shapes."""
    size = len(image)
    if not patch:
        kept = int(round(size * rng.uniform(0.75, 0.85)))
        return image[:, :kept] if left else image[:, size - kept:]
    kept = int(round(size * rng.uniform(0.55, 1.0)))
    start = (size - kept) // 2
    return image[:, start:start + kept] if rng.random() < 0.5 else image[start:start + kept, :]


def write_folders(root: Path, spec: SyntheticMammoSpec = SyntheticMammoSpec()) -> dict[str, int]:
    """Write a class-folder data set under ``root``; returns the number of images per class.

    Each patient gets a class (by ``spec.shares``), a breast density, and two to four
    views; in a patient of class benign or malignant every view shows a finding of that
    class (a simplification: real findings are often visible in some views only), the
    same one in the views of one breast (:class:`Breast`)."""
    rng = np.random.default_rng(spec.seed)
    counts = {name: 0 for name in CLASSES}
    labels = rng.choice(len(CLASSES), size=spec.patients, p=np.asarray(spec.shares) / sum(spec.shares))
    for patient, label_index in enumerate(labels, 1):
        label = CLASSES[label_index]
        folder = Path(root) / label
        folder.mkdir(parents=True, exist_ok=True)
        density = rng.uniform(0.0, 1.0)
        bits = spec.bits or int(rng.choice([8, 16]))
        breasts = {side: Breast.draw(rng, spec.size) for side in "LR"}
        # drawn only with exposure, so that sets made without it stay as they were
        film_seed = int(rng.integers(2**63)) if spec.exposure else None
        shapes = np.random.default_rng(int(rng.integers(2**63))) if spec.shapes else None
        for view in rng.permutation(VIEWS)[: rng.integers(2, len(VIEWS) + 1)]:
            image = mammogram(rng, spec, label, density, view.startswith("L"), breasts[view[0]])
            if film_seed is not None:
                image = expose(image, np.random.default_rng(film_seed), spec.exposure)
            if shapes is not None:
                image = cut_to_shape(image, shapes, spec.patches, view.startswith("L"))
            _write(folder / f"P{patient:04d}_{view}.png", image, bits)
            counts[label] += 1
    return counts
