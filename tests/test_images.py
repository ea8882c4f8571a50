"""MAMMO image folders: formats and their pixel values, splits, the run's manifest, bad input.

Every image here is written by the test itself (Pillow, tifffile, pydicom); expected
pixel values are computed by hand from the formats' definitions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from snnctl import config as cfg
from snnctl import data, service
from snnctl.cli import app
from snnctl.data import folders, images
from snnctl.errors import ConfigError, SnnctlError

from conftest import tiny_config

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
# Digital Mammography X-Ray Image Storage - For Presentation
MAMMOGRAPHY_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"


def write_png(path: Path, array: np.ndarray) -> Path:
    """uint8 arrays become 8-bit gray PNGs, uint16 arrays 16-bit gray PNGs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path


def write_dicom(path: Path, stored: np.ndarray, photometric: str = "MONOCHROME2", bits: int = 12,
                rescale: tuple[float, float] | None = None, window: tuple[float, float] | None = None,
                voi_lut: list[int] | None = None) -> Path:
    """A mammography DICOM file (explicit VR little endian) with 16-bit allocated pixels."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MAMMOGRAPHY_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        item = Dataset()
        item.add_new(0x00283002, "US", [len(voi_lut), 0, 16])  # LUT Descriptor: entries, first value, bits
        item.add_new(0x00283006, "US", voi_lut)  # LUT Data
        ds.VOILUTSequence = [item]
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def class_folders(root: Path, counts: dict[str, int], size: int = 12, seed: int = 0) -> Path:
    """Class folders of 8-bit PNGs; each class brightens its own band of rows."""
    rng = np.random.default_rng(seed)
    for label, (name, count) in enumerate(counts.items()):
        for k in range(count):
            pixels = rng.integers(0, 40, size=(size, size), dtype=np.uint8)
            band = slice(label * size // len(counts), (label + 1) * size // len(counts))
            pixels[band] = 230
            write_png(root / name / f"{name}-{k:03d}.png", pixels)
    return root


def mammo_config(tmp_path: Path, data_dir: Path, **changes) -> cfg.Config:
    values = dict(task="MAMMO", data_dir=str(data_dir), n_classes=2, input_size=12, n_train=None, n_test=None)
    return tiny_config(tmp_path, **{**values, **changes})


def collect() -> tuple[list[str], Callable[[str], None]]:
    """Notices kept in a list, and the callback that keeps them."""
    messages: list[str] = []
    return messages, messages.append


# ---------------------------------------------------------------- formats and pixel values


def test_png_8_and_16_bit_are_scaled_by_their_own_bit_depth(tmp_path):
    eight = np.array([[0, 51, 102], [153, 204, 255]], np.uint8)
    sixteen = np.array([[0, 300, 4095], [40000, 65535, 1]], np.uint16)
    loaded8 = images.read_image(write_png(tmp_path / "a.png", eight))
    loaded16 = images.read_image(write_png(tmp_path / "b.png", sixteen))
    np.testing.assert_allclose(loaded8, eight / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(loaded16, sixteen / 65535.0, rtol=0, atol=1e-7)
    # Converting to 8 bits first would clip 300 to 255, i.e. to full white.
    assert loaded16[0, 1] == pytest.approx(300 / 65535)


def test_tiff_8_and_16_bit_and_white_is_zero(tmp_path):
    import tifffile

    sixteen = np.array([[0, 1000], [30000, 65535]], np.uint16)
    eight = np.array([[0, 10], [200, 255]], np.uint8)
    Image.fromarray(sixteen).save(tmp_path / "a.tif")
    Image.fromarray(eight).save(tmp_path / "b.tiff")
    tifffile.imwrite(tmp_path / "c.tif", sixteen, photometric="miniswhite")
    np.testing.assert_allclose(images.read_image(tmp_path / "a.tif"), sixteen / 65535.0, atol=1e-7)
    np.testing.assert_allclose(images.read_image(tmp_path / "b.tiff"), eight / 255.0, atol=1e-7)
    np.testing.assert_allclose(images.read_image(tmp_path / "c.tif"), 1 - sixteen / 65535.0, atol=1e-7)


def test_jpeg_bmp_and_pgm(tmp_path):
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "a.jpg", quality=95)
    np.testing.assert_allclose(images.read_image(tmp_path / "a.jpg"), 100 / 255, atol=2 / 255)
    # Colour becomes luminance, ITU-R 601-2: 0.299 R + 0.587 G + 0.114 B.
    Image.fromarray(np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)).save(tmp_path / "b.bmp")
    np.testing.assert_allclose(images.read_image(tmp_path / "b.bmp"), [[0.299, 0.114]], atol=1 / 255)
    # A 12-bit PGM (maxval 4095): values scaled by 4095, not by 255 or 65535.
    values = np.array([[0, 1000], [2048, 4095]])
    (tmp_path / "c.pgm").write_bytes(b"P5\n2 2\n4095\n" + values.astype(">u2").tobytes())
    np.testing.assert_allclose(images.read_image(tmp_path / "c.pgm"), values / 4095, atol=1e-4)


STORED = np.array([[0, 1000, 2000], [2500, 3000, 4095]], np.uint16)


def windowed(stored: np.ndarray, slope: float, intercept: float, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, the LINEAR window, onto [0, 1], written out by hand."""
    value = stored * slope + intercept
    low_edge, high_edge = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    inside = (value - (center - 0.5)) / (width - 1) + 0.5
    return np.where(value <= low_edge, 0.0, np.where(value > high_edge, 1.0, inside))


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_rescale_then_window_and_monochrome1_inverted(tmp_path, photometric):
    path = write_dicom(tmp_path / "a.dcm", STORED, photometric, rescale=(2.0, -1000.0), window=(3000.0, 4001.0))
    expected = windowed(STORED, 2.0, -1000.0, 3000.0, 4001.0)
    assert expected[0, 2] == pytest.approx(0.500125)  # stored 2000 -> 3000 after the rescale: the centre
    if photometric == "MONOCHROME1":
        expected = 1 - expected  # 0 is white there: dense tissue must come out bright
    np.testing.assert_allclose(images.read_image(path), expected, atol=1e-6)


def test_dicom_without_window_uses_bits_stored_and_a_voi_lut_is_applied(tmp_path):
    plain = write_dicom(tmp_path / "plain.dcm", STORED, "MONOCHROME1", rescale=(2.0, -1000.0))
    np.testing.assert_allclose(images.read_image(plain), 1 - STORED / 4095, atol=1e-6)
    lut = [0, 1000, 30000, 65535]
    stored = np.array([[0, 1], [2, 3]], np.uint16)
    with_lut = write_dicom(tmp_path / "lut.dcm", stored, voi_lut=lut, window=(1.0, 1.0))  # the LUT wins
    np.testing.assert_allclose(images.read_image(with_lut), np.array(lut).reshape(2, 2) / 65535, atol=1e-6)


def test_formats_are_recognised_by_their_bytes_and_unknown_ones_refused(tmp_path):
    dicom = write_dicom(tmp_path / "IM0001", STORED)  # DICOM files often have no suffix
    png_named_jpg = write_png(tmp_path / "really-a-png.jpg", STORED.astype(np.uint8))
    notes = tmp_path / "notes.txt"
    notes.write_text("patient list")
    assert images.image_format(dicom) == "DICOM"
    assert images.image_format(png_named_jpg) == "PNG"
    assert images.image_format(notes) is None
    with pytest.raises(SnnctlError, match="notes.txt: not an image") as caught:
        images.read_image(notes)
    assert not isinstance(caught.value, images.UnreadableImage)
    noise = np.random.default_rng(0).integers(0, 65535, size=(64, 64), dtype=np.uint16)
    whole = write_png(tmp_path / "whole.png", noise).read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(whole[:len(whole) // 2])  # a copy cut short
    with pytest.raises(images.UnreadableImage, match="broken.png"):
        images.read_image(broken)


def test_squash_fills_the_square_and_pad_keeps_the_shape():
    wide = np.ones((4, 8), np.float32)
    squashed = images.fit(wide, 8, "squash").reshape(8, 8)
    padded = images.fit(wide, 8, "pad").reshape(8, 8)
    torch.testing.assert_close(squashed, torch.ones(8, 8))
    expected = torch.zeros(8, 8)
    expected[2:6] = 1.0  # centred, black above and below
    torch.testing.assert_close(padded, expected)


def test_folders_of_every_format_load_with_the_values_of_their_files(tmp_path):
    root = tmp_path / "mixed"
    square = np.array([[0, 4096, 8192], [16384, 32768, 49152], [60000, 65535, 1000]], np.uint16)
    files = [
        write_png(root / "benign" / "p8.png", (square // 257).astype(np.uint8)),
        write_png(root / "benign" / "p16.png", square),
        write_dicom(root / "benign" / "d1.dcm", square >> 4, "MONOCHROME1"),
        write_dicom(root / "malignant" / "IM0002", square >> 4, rescale=(1.0, 0.0), window=(2048.0, 4096.0)),
        write_png(root / "malignant" / "q16.png", 65535 - square),
    ]
    Image.fromarray(square).save(root / "malignant" / "t16.tif")
    files.append(root / "malignant" / "t16.tif")
    Image.fromarray((square // 257).astype(np.uint8)).save(root / "malignant" / "j.jpg", quality=100)
    files.append(root / "malignant" / "j.jpg")
    config = mammo_config(tmp_path, root, input_size=3, test_fraction=0.3)
    splits = data.load_splits(config, collect()[1])
    assert splits.train.class_names == ["benign", "malignant"]
    loaded = data.concatenate(splits.train, splits.test)
    assert sorted(loaded.sources) == sorted(str(f.resolve()) for f in files)
    for index, source in enumerate(loaded.sources):
        expected = torch.from_numpy(images.read_image(Path(source))).reshape(-1)
        torch.testing.assert_close(loaded.images[index], expected)
        assert loaded.class_names[int(loaded.labels[index])] == Path(source).parent.name


# ---------------------------------------------------------------- splits


def test_split_is_stratified_by_class_and_the_same_for_the_same_seed(tmp_path):
    root = class_folders(tmp_path / "mammo", {"benign": 30, "malignant": 10})
    config = mammo_config(tmp_path, root)
    first = data.load_image_folders(config, collect()[1])
    again = data.load_image_folders(config, collect()[1])
    other = data.load_image_folders(config.replace(seed=7), collect()[1])
    # 20% of each class, as in the original: 6 of 30 and 2 of 10.
    assert torch.bincount(first.test.labels).tolist() == [6, 2]
    assert torch.bincount(first.train.labels).tolist() == [24, 8]
    assert not set(first.train.sources) & set(first.test.sources)
    assert first.test.sources == again.test.sources and first.train.sources == again.train.sources
    assert first.test.sources != other.test.sources
    assert torch.equal(first.test.images, again.test.images)
    quarter = data.load_image_folders(config.replace(test_fraction=0.5, n_train=5), collect()[1])
    assert torch.bincount(quarter.test.labels).tolist() == [15, 5] and len(quarter.train) == 5


def test_balance_draws_both_classes_equally_from_an_unbalanced_folder(tmp_path):
    root = class_folders(tmp_path / "mammo", {"benign": 30, "malignant": 10})
    config = mammo_config(tmp_path, root, balance=True, batch_size=8)
    splits = data.load_image_folders(config, collect()[1])
    order = data.training_order(splits.train, config, epoch=0)
    drawn = splits.train.labels[order]
    assert torch.bincount(drawn).tolist() == [24, 24]
    assert all(torch.bincount(drawn[i:i + 8]).tolist() == [4, 4] for i in range(0, len(drawn), 8))


def test_existing_train_and_test_folders_are_used_as_given(tmp_path):
    root = tmp_path / "mammo"
    class_folders(root / "train", {"benign": 5, "malignant": 3})
    class_folders(root / "test", {"benign": 2, "malignant": 2}, seed=1)
    splits = data.load_image_folders(mammo_config(tmp_path, root), collect()[1])
    assert len(splits.train) == 8 and len(splits.test) == 4
    assert all("/test/" in source for source in splits.test.sources)
    assert splits.manifest["layout"] == "train/test folders"
    (root / "test" / "benign").rename(root / "test" / "normal")
    with pytest.raises(SnnctlError, match="differ from"):
        data.load_image_folders(mammo_config(tmp_path, root), collect()[1])


def test_a_folder_beside_train_and_test_is_named_as_not_read(tmp_path):
    root = tmp_path / "mammo"
    class_folders(root / "train", {"benign": 3, "malignant": 3})
    class_folders(root / "test", {"benign": 2, "malignant": 2}, seed=1)
    class_folders(root / "val", {"benign": 2, "malignant": 2}, seed=2)
    (root / "groups.csv").write_text("path,group\n")  # a file beside them is no sign of a lost split
    messages, notice = collect()
    splits = data.load_image_folders(mammo_config(tmp_path, root), notice)
    assert len(splits.train) == 6 and len(splits.test) == 4
    beside = [m for m in messages if "not the folder(s) beside them" in m]
    assert len(beside) == 1 and beside[0].endswith(": val/") and str(root) in beside[0]


def test_unreadable_images_are_skipped_by_name_and_counted_or_stop_with_strict(tmp_path):
    root = class_folders(tmp_path / "mammo", {"benign": 10, "malignant": 10})
    (root / "benign" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    (root / "malignant" / "empty.dcm").write_bytes(b"")
    messages, notice = collect()
    splits = data.load_image_folders(mammo_config(tmp_path, root), notice)
    assert len(splits.train) + len(splits.test) == 20
    assert any("corrupt.png" in m and m.startswith("skipped") for m in messages)
    assert any("empty.dcm" in m and m.startswith("skipped") for m in messages)
    assert "skipped 2 of 22 images" in messages[-1]
    assert splits.manifest["skipped"] == ["benign/corrupt.png", "malignant/empty.dcm"]
    with pytest.raises(SnnctlError, match="corrupt.png.*strict"):
        data.load_image_folders(mammo_config(tmp_path, root, strict=True), notice)


def test_linked_patient_folders_are_followed_once_and_a_broken_link_is_skipped_by_name(tmp_path):
    root = class_folders(tmp_path / "mammo", {"benign": 10, "malignant": 10})
    archive = class_folders(tmp_path / "archive", {"patient": 3})
    (root / "malignant" / "P0016").symlink_to(archive / "patient", target_is_directory=True)
    (root / "malignant" / "loop").symlink_to(root / "malignant", target_is_directory=True)  # a link back up
    (root / "benign" / "P0953.png").symlink_to(tmp_path / "gone.png")
    found = folders.image_files(str(root))
    assert {f"malignant/P0016/{p.name}" for p in (archive / "patient").iterdir()} <= found
    assert "benign/P0953.png" in found and not any(f.startswith("malignant/loop/") for f in found)
    messages, notice = collect()
    splits = data.load_image_folders(mammo_config(tmp_path, root), notice)
    assert len(splits.train) + len(splits.test) == 23
    assert any("P0953.png" in m and m.startswith("skipped") for m in messages)


def test_sixteen_bit_files_holding_twelve_bit_values_get_a_notice_unless_stretched(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("benign", "malignant"):
        for k in range(8):
            write_png(tmp_path / "dim" / name / f"{k}.png", rng.integers(0, 4096, (12, 12)).astype(np.uint16))
    messages, notice = collect()
    data.load_image_folders(mammo_config(tmp_path, tmp_path / "dim"), notice)
    dim = [m for m in messages if "brightest pixels reach only" in m]
    assert len(dim) == 1 and "dim" in dim[0] and "holding 12-bit values" in dim[0] and "percentile" in dim[0]
    # the intensity it suggests makes up for the 4 missing bits (x 16), and then it is quiet
    suggested = float(re.search(r"intensity: ([0-9]+) gives them", dim[0]).group(1))
    assert suggested == 16 * mammo_config(tmp_path, tmp_path / "dim").intensity  # 12-bit values: 4095 of 65535
    messages, notice = collect()
    data.load_image_folders(mammo_config(tmp_path, tmp_path / "dim", intensity=suggested), notice)
    assert not any("brightest pixels" in m for m in messages)
    # squared grey levels (gamma: 2, as mammo-study.yaml) lose the 4 bits twice: x 256
    squared = mammo_config(tmp_path, tmp_path / "dim", gamma=2.0)
    messages, notice = collect()
    data.load_image_folders(squared, notice)
    suggested = float(re.search(r"intensity: ([0-9]+) gives them", " ".join(messages)).group(1))
    assert suggested == 256 * squared.intensity
    messages, notice = collect()
    data.load_image_folders(squared.replace(intensity=suggested), notice)
    assert not any("brightest pixels" in m for m in messages)
    messages, notice = collect()
    data.load_image_folders(mammo_config(tmp_path, tmp_path / "dim", normalize="percentile"), notice)
    assert not any("brightest pixels" in m for m in messages)
    messages, notice = collect()
    data.load_image_folders(mammo_config(tmp_path, tmp_path / "dim", input_length=10.0), notice)
    assert not any("brightest pixels" in m for m in messages)
    messages, notice = collect()
    data.load_image_folders(mammo_config(tmp_path, class_folders(tmp_path / "bright", {"a": 8, "b": 8})), notice)
    assert not any("brightest pixels" in m for m in messages)



def test_dim_films_with_one_bright_pixel_get_the_intensity_that_brings_the_median_image_to_full_rate(tmp_path):
    # full 16-bit values exist (no smaller bit depth to blame), yet the median image is dim
    for name in ("benign", "malignant"):
        for k in range(8):
            pixels = np.full((12, 12), 1000, np.uint16)
            pixels[0, 0] = 65535 if k == 0 else 6553  # the median image's brightest: 0.1 of the range
            write_png(tmp_path / "films" / name / f"{k}.png", pixels)
    messages, notice = collect()
    config = mammo_config(tmp_path, tmp_path / "films", resize="pad")
    data.load_image_folders(config, notice)
    dim = [m for m in messages if "brightest pixels reach only" in m]
    assert len(dim) == 1 and "dim films?" in dim[0] and "bits" not in dim[0]
    suggested = float(re.search(r"intensity: ([0-9]+) brings the median image", dim[0]).group(1))
    assert suggested == pytest.approx(config.intensity * 65535 / 6553, abs=1)

# ---------------------------------------------------------------- the run's manifest


def test_manifest_gives_back_exactly_the_same_images_without_decoding(tmp_path, monkeypatch):
    root = class_folders(tmp_path / "mammo", {"benign": 12, "malignant": 6})
    config = mammo_config(tmp_path, root)
    splits = data.load_image_folders(config, collect()[1])
    run = tmp_path / "run"
    run.mkdir()
    assert data.load_manifest(run, config, collect()[1]) is None
    data.write_manifest(run, splits)
    manifest = json.loads((run / data.MANIFEST_NAME).read_text())
    assert [e["file"] for e in manifest["test"]] == [str(Path(s).relative_to(root.resolve())) for s in splits.test.sources]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folders, "read_image", no_decoding)
    again = data.load_manifest(run, config, collect()[1])
    for split in ("train", "test"):
        assert getattr(again, split).sources == getattr(splits, split).sources
        assert torch.equal(getattr(again, split).images, getattr(splits, split).images)
        assert torch.equal(getattr(again, split).labels, getattr(splits, split).labels)
    monkeypatch.undo()
    # New images in the folder do not change the recorded split; other settings decode again.
    class_folders(root, {"benign": 20, "malignant": 6}, seed=3)
    messages, notice = collect()
    padded = data.load_manifest(run, config.replace(resize="pad"), notice)
    assert padded.test.sources == splits.test.sources and "decoding" in messages[0]
    (run / data.MANIFEST_NAME).write_text("{not json")
    with pytest.raises(SnnctlError, match="split.json: not a readable split manifest"):
        data.load_manifest(run, config, notice)


def test_parameters_mammo_yaml_holds_the_original_inbreast_settings():
    original = """
time: &time 250
dt: &dt 1.0
name: 'n400_inh_400'
training:
  task: 'INBREAST'
  data_dir: '/home/nvidia/datasets/inbreast-augmented/classification/'
  log_dir: './logs'
  intensity: 128
  n_classes: 2
  batch_size: 8
  seed: 1234
  n_neurons: 400
  input_size: 128
  reduction: 'max'
  theta_plus: .05
  epochs: 1
  inh: 400
encoder:
  module_name: bindsnet.encoding
  class_name: PoissonEncoder
  params:
    time: *time
    dt: *dt
"""
    ours = cfg.load(REPO / "parameters" / "mammo.yaml")
    theirs = cfg.from_mapping(yaml.safe_load(original), "inbreast.yaml")
    assert ours.data_dir == "./data/mammo"
    assert ours.replace(data_dir=theirs.data_dir) == theirs
    lines = (REPO / "parameters" / "mammo.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert "#" in line or lines[index - 1].startswith("#"), f"no comment on: {line}"


# ---------------------------------------------------------------- the command line


def write_params(tmp_path: Path, data_dir: Path, **changes) -> Path:
    path = tmp_path / "mammo.yaml"
    path.write_text(yaml.safe_dump(mammo_config(tmp_path, data_dir, **changes).to_dict()))
    return path


def bad_folder(tmp_path: Path, case: str) -> Path:
    root = tmp_path / "mammo"
    if case == "missing":
        return root
    root.mkdir()
    if case in ("empty class", "unknown format", "one class"):
        class_folders(root, {"benign": 3} if case == "one class" else {"benign": 3, "malignant": 2})
    if case == "empty class":
        (root / "normal").mkdir()
        (root / "normal" / ".DS_Store").write_bytes(b"\0")
    if case == "unknown format":
        (root / "malignant" / "notes.xlsx").write_bytes(b"PK\x03\x04")
    if case == "only train":
        class_folders(root / "train", {"benign": 3, "malignant": 2})
    return root


@pytest.mark.parametrize("case, code, words", [
    ("missing", 2, "does not exist"),
    ("no images", 1, "no class folders"),
    ("one class", 1, "only one class folder (benign)"),
    ("empty class", 1, "normal: class folder holds no images"),
    ("unknown format", 1, "notes.xlsx: not an image"),
    ("only train", 1, "no test/ folder"),
])
def test_bad_data_folders_are_one_clear_line(tmp_path, case, code, words):
    params = write_params(tmp_path, bad_folder(tmp_path, case))
    result = runner.invoke(app, ["train", str(params), "--out", str(tmp_path / "run")])
    assert result.exit_code == code, result.output
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_mammo_train_then_evaluate_the_same_held_out_images(tmp_path, monkeypatch):
    root = class_folders(tmp_path / "mammo", {"benign": 36, "malignant": 12})
    (root / "malignant" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    params = write_params(tmp_path, root, balance=True, batch_size=6)
    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", str(params), "--out", str(run), "--json"])
    assert trained.exit_code == 0, trained.output
    assert "broken.png" in trained.stderr and "skipped 1 of 49" in trained.stderr
    result = json.loads(trained.stdout)
    manifest = json.loads((run / data.MANIFEST_NAME).read_text())
    assert Path(result["checkpoint"]).is_file() and (run / data.SPLIT_IMAGES_NAME).is_file()
    assert result["n_test"] == len(manifest["test"]) == 10 and manifest["skipped"] == ["malignant/broken.png"]

    evaluated = runner.invoke(app, ["evaluate", result["checkpoint"], "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "decoding" not in evaluated.stderr  # the run's decoded images, not the files again
    report = json.loads(evaluated.stdout)
    assert report["n_samples"] == 10 and report["classes"] == ["benign", "malignant"]
    # The same images in the same order give the same spikes: the accuracy train reported.
    assert report["accuracy"] == result["test_accuracy"]
    assert report["positive_class"] == "malignant"
    recalls = [c["recall"] for c in report["per_class"]]
    assert report["specificity"] == recalls[0] and report["sensitivity"] == recalls[1]
    assert report["balanced_accuracy"] == pytest.approx(sum(recalls) / 2)

    by_dir = runner.invoke(app, ["evaluate", result["checkpoint"], "--task", "MAMMO", "--data-dir", str(root), "--json"])
    assert by_dir.exit_code == 0, by_dir.output
    assert json.loads(by_dir.stdout)["n_samples"] == 10
    # the run's own folder named relatively is the run's folder: its recorded split, not a new one
    monkeypatch.chdir(tmp_path)
    relative = runner.invoke(app, ["evaluate", result["checkpoint"], "--data-dir", "mammo", "--json"])
    assert relative.exit_code == 0, relative.output
    assert "decoding" not in relative.stderr and json.loads(relative.stdout)["accuracy"] == result["test_accuracy"]


def test_a_layer_trained_on_mnist_is_relabelled_and_evaluated_on_mammo(trained_run, tmp_path):
    root = class_folders(tmp_path / "mammo", {"benign": 20, "malignant": 10}, size=28)
    relabelled = tmp_path / "on-mammo.safetensors"
    assigned = runner.invoke(app, ["assign", trained_run.checkpoint, "--task", "MAMMO", "--data-dir", str(root),
                                   "--out", str(relabelled), "--json"])
    assert assigned.exit_code == 0, assigned.output
    assert json.loads(assigned.stdout)["classes"] == ["benign", "malignant"]
    evaluated = runner.invoke(app, ["evaluate", str(relabelled), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["task"] == "MAMMO" and report["n_samples"] == 6  # 20% of 20 and of 10
    recalls = [c["recall"] for c in report["per_class"]]
    assert report["balanced_accuracy"] == pytest.approx(sum(recalls) / 2)
    assert sum(map(sum, report["confusion"])) == 6


def test_service_functions_train_on_mammo_and_read_the_manifest(tmp_path):
    root = class_folders(tmp_path / "mammo", {"benign": 16, "malignant": 8})
    config = mammo_config(tmp_path, root, resize="pad")
    result = service.train(config, out=tmp_path / "run")
    splits = data.load_manifest(Path(result.run_dir), config, collect()[1])
    assert len(splits.test) == result.n_test == 5
    with pytest.raises(ConfigError, match="data_dir"):
        data.load_image_folders(config.replace(data_dir=str(tmp_path / "nowhere")), collect()[1])


@pytest.mark.parametrize("folds", [None, 3])
def test_n_classes_that_the_class_folders_do_not_match_fails_before_any_image_is_decoded(tmp_path, monkeypatch, folds):
    """A screening set of thousands of 16-bit views takes minutes to decode: the class
    folders are counted first, for a run and for a study alike."""
    from snnctl.data import folders

    root = class_folders(tmp_path / "mammo", {"benign": 6, "malignant": 6})
    monkeypatch.setattr(folders, "decode_splits", lambda *args: pytest.fail("images decoded before the check"))
    params = write_params(tmp_path, root, n_classes=3, **({} if folds is None else {"folds": folds}))
    result = runner.invoke(app, ["train", str(params), "--out", str(tmp_path / "new" / "run")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("error: n_classes: 3 does not match the 2 classes of the data (benign, "
                                     "malignant); set n_classes: 2 (--set n_classes=2)")
    assert not (tmp_path / "new").exists(), "the folders made for the run are removed with it"
