"""The synthetic mammogram-like folders: what snnctl reads, and what makes them hard."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from snnctl import config as cfg
from snnctl import data
from snnctl.data import synthetic


def test_folders_hold_patients_with_several_views_unbalanced_classes_and_both_bit_depths(tmp_path):
    counts = synthetic.write_folders(tmp_path, synthetic.SyntheticMammoSpec(patients=30, size=48, seed=4))
    files = sorted(tmp_path.rglob("*.png"))
    assert sum(counts.values()) == len(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(synthetic.CLASSES)
    assert counts["normal"] > counts["malignant"] > 0
    views = Counter(re.match(r"(P\d+)_", p.name).group(1) for p in files)
    assert len(views) == 30 and min(views.values()) >= 2 and max(views.values()) <= 4
    patient_classes = {re.match(r"(P\d+)_", p.name).group(1): p.parent.name for p in files}
    assert all(p.parent.name == patient_classes[p.name[:5]] for p in files)  # a patient's views share a class
    modes = {Image.open(p).mode for p in files}
    assert "L" in modes and modes & {"I;16", "I"}


def test_tissue_is_mid_grey_and_low_in_contrast_and_a_finding_is_faint(tmp_path):
    rng = np.random.default_rng(0)
    spec = synthetic.SyntheticMammoSpec(size=64)
    normal = synthetic.mammogram(rng, spec, "normal", density=0.5, left=True)
    breast = normal[normal > 0.05]
    assert 0.3 < breast.mean() < 0.7 and breast.std() < 0.1
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    plain = synthetic.mammogram(rng_a, spec, "normal", 0.5, True)
    finding = synthetic.mammogram(rng_b, spec, "benign", 0.5, True) - plain
    assert 0 < np.abs(finding).max() <= 2 * spec.contrast + 0.05


def test_snnctl_reads_the_folders_as_a_mammo_task(tmp_path):
    synthetic.write_folders(tmp_path / "mammo", synthetic.SyntheticMammoSpec(patients=12, size=40, seed=1))
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), n_classes=3, input_size=32)
    splits = data.load_splits(config, lambda message: None)
    assert splits.train.class_names == sorted(synthetic.CLASSES)
    assert splits.train.images.shape[1] == 32 * 32 and len(splits.train) + len(splits.test) > 24



@pytest.mark.parametrize("bits", [12, 14])
def test_sixteen_bit_files_holding_fewer_bits_read_dim_and_the_notice_gives_the_intensity(tmp_path, bits):
    spec = synthetic.SyntheticMammoSpec(patients=12, size=32, bits=bits, seed=1, patches=True)
    synthetic.write_folders(tmp_path / "mammo", spec)
    full = synthetic.write_folders(tmp_path / "full", synthetic.SyntheticMammoSpec(**{**vars(spec), "bits": 16}))
    stored = [np.asarray(Image.open(path)) for path in sorted((tmp_path / "mammo").rglob("*.png"))]
    assert len(stored) == sum(full.values())
    assert all(Image.open(path).mode in ("I;16", "I") for path in (tmp_path / "mammo").rglob("*.png"))
    assert max(int(s.max()) for s in stored) <= 2**bits - 1 < 2**bits <= max(int(s.max()) for s in stored) * 2
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), n_classes=3, input_size=32)
    notices: list[str] = []
    dim = data.load_splits(config, notices.append)
    said = [n for n in notices if "brightest pixels reach only" in n]
    assert len(said) == 1
    intensity = float(re.search(r"intensity: ([0-9]+) gives them", said[0]).group(1))
    assert intensity == pytest.approx(config.intensity * 2 ** (16 - bits), rel=0.05)
    # the same images as full 16-bit files, scaled down by the missing bits
    bright = data.load_splits(config.replace(data_dir=str(tmp_path / "full")), lambda message: None)
    assert dim.train.images.numpy() * 2 ** (16 - bits) == pytest.approx(bright.train.images.numpy(), abs=2e-3)
    notices.clear()
    data.load_splits(config.replace(intensity=intensity), notices.append)
    assert not [n for n in notices if "brightest pixels" in n]

def test_patches_are_tissue_only_with_the_finding_near_the_centre(tmp_path):
    spec = synthetic.SyntheticMammoSpec(size=64, patches=True)
    for seed in range(4):
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        plain = synthetic.mammogram(rng_a, spec, "normal", 0.5, True)
        assert plain.min() > 0.1  # no air, no skin line: tissue throughout
        finding = np.abs(synthetic.mammogram(rng_b, spec, "malignant", 0.5, True) - plain)
        row, col = np.unravel_index(finding.argmax(), finding.shape)
        assert finding.max() > 0.1 and 16 <= row < 48 and 16 <= col < 48  # cut around the finding
    counts = synthetic.write_folders(tmp_path, synthetic.SyntheticMammoSpec(patients=10, size=32, patches=True, seed=2))
    assert sum(counts.values()) == len(list(tmp_path.rglob("P*_*.png")))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_the_views_of_one_breast_share_its_tissue_and_its_finding():
    spec = synthetic.SyntheticMammoSpec(size=64, patches=True)
    rng = np.random.default_rng(0)
    breast, other = synthetic.Breast.draw(rng, spec.size), synthetic.Breast.draw(rng, spec.size)
    first, second = (synthetic.mammogram(rng, spec, "normal", 0.5, True, breast) for _ in range(2))
    stranger = synthetic.mammogram(rng, spec, "normal", 0.5, True, other)
    assert correlation(first, second) > 0.6 > 0.3 > abs(correlation(first, stranger))
    for seed in range(3):  # a finding's size and shape are the breast's; where it lies, the view's
        breast = synthetic.Breast.draw(np.random.default_rng(seed), spec.size)
        findings = []
        for view in (10 + seed, 20 + seed):
            plain = synthetic.mammogram(np.random.default_rng(view), spec, "normal", 0.5, True, breast)
            findings.append(synthetic.mammogram(np.random.default_rng(view), spec, "benign", 0.5, True, breast) - plain)
        assert not np.allclose(findings[0], findings[1])
        assert findings[0].sum() == pytest.approx(findings[1].sum(), rel=0.1)


def test_exposure_changes_brightness_between_patients_not_within_an_examination(tmp_path):
    image = np.linspace(0.0, 1.0, 64).reshape(8, 8)
    assert np.array_equal(synthetic.expose(image, np.random.default_rng(3), 0.0), image)
    film = synthetic.expose(image, np.random.default_rng(3), 1.0)
    assert np.array_equal(film, synthetic.expose(image, np.random.default_rng(3), 1.0))
    assert 0.0 <= film.min() and film.max() <= 1.0
    assert np.all(np.diff(film.ravel()) >= 0)  # grey levels keep their order
    assert not np.allclose(film, synthetic.expose(image, np.random.default_rng(4), 1.0))

    def mean_grey(exposure: float) -> dict[str, list[float]]:
        root = tmp_path / f"exposure-{exposure}"
        synthetic.write_folders(root, synthetic.SyntheticMammoSpec(patients=24, size=32, bits=16, seed=2,
                                                                   patches=True, exposure=exposure))
        by_patient: dict[str, list[float]] = {}
        for path in root.rglob("*.png"):
            by_patient.setdefault(path.name[:5], []).append(np.asarray(Image.open(path)).mean() / 65535)
        return by_patient

    def spread_between_and_within(by_patient: dict[str, list[float]]) -> tuple[float, float]:
        means = [np.mean(views) for views in by_patient.values()]
        return float(np.std(means)), float(np.mean([np.std(views) for views in by_patient.values()]))

    plain_between, plain_within = spread_between_and_within(mean_grey(0.0))
    exposed_between, exposed_within = spread_between_and_within(mean_grey(1.0))
    assert exposed_between > 1.25 * plain_between  # films of different patients differ
    assert exposed_within < exposed_between / 2  # the views of one examination share their film


def test_shapes_cut_views_taller_than_wide_on_the_chest_wall_side_and_patches_to_varied_rectangles(tmp_path):
    for patches in (False, True):
        root = tmp_path / ("patches" if patches else "views")
        synthetic.write_folders(root, synthetic.SyntheticMammoSpec(patients=12, size=40, bits=8, seed=5,
                                                                   patches=patches, shapes=True))
        shapes = {path.name: np.asarray(Image.open(path)).shape for path in root.rglob("*.png")}
        assert len(set(shapes.values())) > 3  # each image its own shape
        for name, (height, width) in shapes.items():
            if patches:  # one side whole, the other 0.55 to 1.0 of it
                assert max(height, width) == 40 and 22 <= min(height, width) <= 40
            else:
                assert height == 40 and 30 <= width <= 34
        if not patches:  # the chest wall side is kept: breast along that edge, air across the other
            for path in root.rglob("*.png"):
                image = np.asarray(Image.open(path), dtype=np.float32)
                wall, far = (image[:, 0], image[:, -1]) if "_L_" in path.name else (image[:, -1], image[:, 0])
                assert wall.mean() > far.mean()
    square = tmp_path / "square"
    synthetic.write_folders(square, synthetic.SyntheticMammoSpec(patients=4, size=40, bits=8, seed=5))
    assert {np.asarray(Image.open(path)).shape for path in square.rglob("*.png")} == {(40, 40)}


def test_pad_gives_a_narrow_patch_black_bands_and_squash_keeps_tissue_throughout(tmp_path):
    synthetic.write_folders(tmp_path, synthetic.SyntheticMammoSpec(patients=10, size=40, bits=8, seed=1,
                                                                   patches=True, shapes=True))

    def darkest_pixels(resize: str) -> np.ndarray:
        config = cfg.Config(task="MAMMO", data_dir=str(tmp_path), n_classes=3, input_size=16, resize=resize)
        splits = data.load_splits(config, lambda message: None)
        images = torch.cat([splits.train.images, splits.test.images]).float()
        assert images.shape[1] == 16 * 16
        return images.min(dim=1).values.numpy()

    assert (darkest_pixels("pad") == 0).mean() > 0.5  # most patches are not square: black beside them
    assert (darkest_pixels("squash") > 0).all()  # a patch of tissue does not end in black
