"""Encodings of low-contrast images: the ON/OFF filters against scipy's Gaussian filtering,
flat grey makes no ON/OFF input, the percentile window, CLAHE from scikit-image, and the
doubled input through the network, checkpoint, figures and data loading; deskewing
against scipy's affine transform; the power law (gamma) and where it falls among them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from snnctl import config as cfg
from snnctl import data
from snnctl.data import encodings, synthetic

SIZE = 24


def hand_made_image() -> np.ndarray:
    """A mid-grey square with a brighter disc, a dark bar and one bright speck."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    image = np.full((SIZE, SIZE), 0.5)
    image[(rows - 8) ** 2 + (cols - 8) ** 2 <= 16] = 0.7
    image[16:19, 4:20] = 0.3
    image[5, 18] = 0.9
    return image


def test_difference_of_gaussians_matches_scipys_gaussian_filters():
    image = hand_made_image()
    expected = (ndimage.gaussian_filter(image, encodings.CENTRE_SIGMA, mode="nearest")
                - ndimage.gaussian_filter(image, encodings.SURROUND_SIGMA, mode="nearest"))
    found = encodings.difference_of_gaussians(torch.from_numpy(image)[None])[0].numpy()
    np.testing.assert_allclose(found, expected, atol=1e-12)


def test_on_and_off_channels_are_the_two_signs_of_the_response_scaled_by_a_half_contrast_edge():
    image = hand_made_image()
    response = (ndimage.gaussian_filter(image, 1.0, mode="nearest") - ndimage.gaussian_filter(image, 2.0, mode="nearest"))
    step = np.zeros((40, 40))
    step[:, 20:] = 0.5  # an edge of half the gray range: the highest rate
    scale = (ndimage.gaussian_filter(step, 1.0, mode="nearest") - ndimage.gaussian_filter(step, 2.0, mode="nearest")).max()
    rates = encodings.on_off(torch.from_numpy(image).float().reshape(1, -1), SIZE)[0].numpy()
    assert rates.shape == (2 * SIZE * SIZE,)
    on, off = rates[:SIZE * SIZE].reshape(SIZE, SIZE), rates[SIZE * SIZE:].reshape(SIZE, SIZE)
    np.testing.assert_allclose(on, np.clip(response / scale, 0, 1), atol=1e-5)
    np.testing.assert_allclose(off, np.clip(-response / scale, 0, 1), atol=1e-5)
    assert on[5, 18] > 0.5 and off[5, 18] == 0.0 and off[17, 12] > 0.5 and on[17, 12] == 0.0  # speck ON, bar OFF
    assert encodings.edge_response() == pytest.approx(2 * scale)


def test_a_flat_grey_image_makes_almost_no_on_off_input():
    flat = torch.full((1, SIZE * SIZE), 0.5)
    assert encodings.on_off(flat, SIZE).abs().max() < 1e-9
    noisy = flat + 0.001 * torch.randn(1, SIZE * SIZE, generator=torch.Generator().manual_seed(0))
    assert encodings.on_off(noisy, SIZE).max() < 0.02  # faint noise stays far below the highest rate
    config = cfg.Config(input_size=SIZE, encoding="on-off", intensity=128.0, time=250)
    rates = encodings.encode(flat, config)
    assert float(rates.sum()) * config.intensity * config.time / 1000 < 1e-6  # expected input spikes


def test_in_a_view_with_air_the_filters_see_the_breast_only_and_its_outline_sends_nothing():
    image = hand_made_image()
    image[:, :5] = 0.02  # air left of the breast: the skin line is the strongest edge
    pixels = torch.from_numpy(image).float().reshape(1, -1)
    inside = encodings.breast_inside(pixels, SIZE)
    assert inside[0, :, :5 + encodings.OUTLINE_WIDTH].sum() == 0 and inside[0, :, 5 + encodings.OUTLINE_WIDTH:].all()
    rates = encodings.encode(pixels, cfg.Config(input_size=SIZE, encoding="on-off"))[0].numpy()
    on, off = rates[:SIZE * SIZE].reshape(SIZE, SIZE), rates[SIZE * SIZE:].reshape(SIZE, SIZE)
    plain = encodings.on_off(pixels, SIZE)[0].numpy()
    assert plain[:SIZE * SIZE].reshape(SIZE, SIZE)[:, 5].max() > 0.9  # unmasked, the outline fires at the top rate
    assert on[:, :5 + encodings.OUTLINE_WIDTH].max() == 0.0 and off[:, :5 + encodings.OUTLINE_WIDTH].max() == 0.0
    flat = np.full((SIZE, SIZE), 0.5)
    flat[:, :5] = 0.02
    view = encodings.encode(torch.from_numpy(flat).float().reshape(1, -1), cfg.Config(input_size=SIZE, encoding="on-off"))
    assert view.max() < 1e-6  # flat breast beside air: no input at all
    # inside, a normalized convolution (Knutsson & Westin 1993) over the breast's pixels
    mask = inside[0].numpy().astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):  # far out in the air: 0 / 0, masked below
        blurred = [np.nan_to_num(ndimage.gaussian_filter(image * mask, sigma, mode="nearest")
                                 / ndimage.gaussian_filter(mask, sigma, mode="nearest")) for sigma in (1.0, 2.0)]
    response = (blurred[0] - blurred[1]) * mask / (encodings.FULL_RATE_EDGE * encodings.edge_response())
    np.testing.assert_allclose(on, np.clip(response, 0, 1), atol=1e-5)
    np.testing.assert_allclose(off, np.clip(-response, 0, 1), atol=1e-5)
    assert on[5, 18] > 0.5 and off[17, 12] > 0.5  # the speck and the bar still fire


def test_a_patch_of_tissue_without_air_is_filtered_whole():
    pixels = torch.from_numpy(hand_made_image()).float().reshape(1, -1)
    assert encodings.breast_inside(pixels, SIZE) is None  # its dark bar is fat, not air
    pixels[0, 0] = 0.0
    assert encodings.breast_inside(pixels, SIZE) is None  # nor is one black pixel
    assert torch.equal(encodings.encode(pixels, cfg.Config(input_size=SIZE, encoding="on-off")),
                       encodings.on_off(pixels, SIZE))


def test_thin_strokes_on_a_black_page_are_not_taken_for_a_breast_on_air():
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    radius = np.hypot(rows - SIZE / 2, cols - SIZE / 2)
    digit = ((radius >= 6) & (radius < 8)).astype(float)  # a handwritten 0: a 2-pixel ring on black
    pixels = torch.from_numpy(digit).float().reshape(1, -1)
    assert encodings.breast_inside(pixels, SIZE) is None  # the outline band would swallow the strokes
    rates = encodings.encode(pixels, cfg.Config(input_size=SIZE, encoding="on-off"))
    assert torch.equal(rates, encodings.on_off(pixels, SIZE))
    on = rates[0, :SIZE * SIZE].reshape(SIZE, SIZE).numpy()
    assert on[digit > 0].mean() > 0.5  # the strokes fire
    view = hand_made_image()
    view[:, :5] = 0.02  # beside it, a breast on air keeps its mask
    both = torch.from_numpy(np.stack([digit, view])).float().reshape(2, -1)
    inside = encodings.breast_inside(both, SIZE)
    assert inside[0].all() and inside[1, :, :5 + encodings.OUTLINE_WIDTH].sum() == 0


def test_percentile_window_maps_the_1st_and_99th_percentiles_to_0_and_1():
    rng = np.random.default_rng(0)
    tissue = rng.normal(0.5, 0.03, (SIZE, SIZE)).clip(0.03, 1)
    tissue[:, :6] = 0.02  # air beside the breast, not part of the window
    windowed = encodings.percentile_window(torch.from_numpy(tissue).float().reshape(1, -1))[0].numpy()
    breast = tissue[:, 6:]
    low, high = np.quantile(breast, [0.01, 0.99])
    np.testing.assert_allclose(windowed.reshape(SIZE, SIZE)[:, 6:], np.clip((breast - low) / (high - low), 0, 1),
                               atol=1e-5)
    assert windowed.reshape(SIZE, SIZE)[:, :6].max() == 0.0
    assert windowed.max() == 1.0 and windowed.min() == 0.0
    assert np.mean(windowed.reshape(SIZE, SIZE)[:, 6:] >= 1.0) == pytest.approx(0.01, abs=0.01)


def test_clahe_is_scikit_images_equalize_adapthist():
    from skimage.exposure import equalize_adapthist

    image = hand_made_image()
    found = encodings.clahe(torch.from_numpy(image).float().reshape(1, -1), SIZE)[0].numpy()
    np.testing.assert_allclose(found, equalize_adapthist(image.astype(np.float32).astype(np.float64)).ravel(), atol=1e-6)


def test_encode_applies_window_clahe_and_encoding_in_order_and_plain_keeps_the_images():
    images = torch.from_numpy(hand_made_image()).float().reshape(1, -1)
    plain = cfg.Config(input_size=SIZE)
    assert encodings.encode(images, plain) is images
    config = plain.replace(normalize="percentile", clahe=True, encoding="on-off")
    expected = encodings.on_off(encodings.clahe(encodings.percentile_window(images), SIZE), SIZE)
    assert torch.equal(encodings.encode(images, config), expected)
    assert encodings.encode((images * 255).round().to(torch.uint8), plain.replace(normalize="percentile")).dtype == torch.float32


def slanted_bar(size: int = 28) -> torch.Tensor:
    """A bar two pixels wide leaning right as it goes down (one column every two rows), off centre."""
    image = torch.zeros(size, size)
    for row in range(4, 24):
        column = 6 + (row - 4) // 2
        image[row, column:column + 2] = 1.0
    return image


def test_deskew_shears_a_slanted_bar_upright_into_the_middle_and_leaves_a_blank_image_blank():
    images = torch.stack([slanted_bar(), torch.zeros(28, 28)]).reshape(2, -1)
    bar, blank = encodings.deskewed(images, 28).reshape(2, 28, 28)
    ink_columns = [set((bar[row] > 0.3).nonzero().flatten().tolist()) for row in range(6, 22)]
    assert all(columns == ink_columns[0] for columns in ink_columns), "every row's ink in the same columns"
    rows, columns = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centre = ((bar * rows).sum() / bar.sum(), (bar * columns).sum() / bar.sum())
    assert centre == (pytest.approx(13.5, abs=0.05), pytest.approx(13.5, abs=0.05))
    assert bar.sum() == pytest.approx(40.0, rel=1e-4), "a shear moves ink, it makes none"
    assert torch.equal(blank, torch.zeros(28, 28))


def test_deskew_is_the_moment_shear_that_scipys_affine_transform_computes():
    """Deskewing as it is usually written (a pixel's column regressed on its row, then
    scipy.ndimage.affine_transform, bilinear, centre of mass to the middle) on blobs inside the image."""
    rng = np.random.default_rng(3)
    images = np.zeros((3, 28, 28))
    for image in images:
        image[8:20, 9:19] = ndimage.gaussian_filter(rng.random((12, 10)), 1.0)
        image[:] = ndimage.affine_transform(image, [[1, 0], [rng.uniform(-0.4, 0.4), 1]], offset=(0, -2), order=1)
    expected = []
    for image in images:
        rows, columns = np.mgrid[0:28, 0:28]
        mass = image.sum()
        centre = np.array([(image * rows).sum(), (image * columns).sum()]) / mass
        row_variance = (image * (rows - centre[0]) ** 2).sum() / mass
        covariance = (image * (rows - centre[0]) * (columns - centre[1])).sum() / mass
        shear = np.array([[1.0, 0.0], [covariance / row_variance, 1.0]])
        offset = centre - shear @ np.array([13.5, 13.5])
        expected.append(ndimage.affine_transform(image, shear, offset=offset, order=1, mode="constant"))
    ours = encodings.deskewed(torch.from_numpy(images).float().reshape(3, -1), 28).reshape(3, 28, 28).numpy()
    assert np.abs(ours - np.stack(expected)).max() < 1e-4


def test_deskew_goes_before_the_encodings_and_only_where_asked():
    images = slanted_bar().reshape(1, -1)
    config = cfg.Config(deskew=True)
    assert not encodings.is_plain(config)
    assert torch.equal(encodings.encode(images, config), encodings.deskewed(images, 28))
    eight_bit = (images * 255).to(torch.uint8)
    assert torch.allclose(encodings.encode(eight_bit, config), encodings.deskewed(images, 28), atol=1e-6)
    with_length = config.replace(input_length=3.0)
    straight = encodings.deskewed(images, 28)
    assert torch.allclose(encodings.encode(images, with_length), straight * 3.0 / straight.norm(), atol=1e-6)
    assert encodings.encode(images, cfg.Config()) is images


def test_input_length_scales_each_image_to_that_length_after_the_encodings_and_a_blank_stays_blank():
    image = torch.from_numpy(hand_made_image()).float().reshape(1, -1)
    images = torch.cat([image, 0.25 * image, torch.zeros_like(image)])
    config = cfg.Config(input_size=SIZE, input_length=5.0)
    encoded = encodings.encode(images, config)
    lengths = torch.linalg.vector_norm(encoded, dim=1)
    assert lengths[:2].tolist() == pytest.approx([5.0, 5.0], rel=1e-6) and lengths[2] == 0
    # the direction is the image's: a faint copy and the bright one give the same rates
    assert torch.allclose(encoded[0], encoded[1], atol=1e-6)
    eight_bit = (images * 255).round().to(torch.uint8)
    assert torch.allclose(encodings.encode(eight_bit, config), encodings.encode(eight_bit.float() / 255, config))
    assert torch.allclose(encoded[0], image[0] * 5.0 / image.norm(), atol=1e-3)
    with_on_off = config.replace(encoding="on-off")
    expected = encodings.on_off(image, SIZE)
    assert torch.allclose(encodings.encode(image, with_on_off), expected * 5.0 / expected.norm(), atol=1e-6)
    assert encodings.encode(image, config.replace(input_length=None)) is image


def test_gamma_raises_each_grey_level_after_the_window_and_before_the_encoding_and_the_length():
    image = torch.from_numpy(hand_made_image()).float().reshape(1, -1)
    config = cfg.Config(input_size=SIZE, gamma=0.5)
    assert not encodings.is_plain(config)
    assert torch.allclose(encodings.encode(image, config), image.sqrt())
    eight_bit = (image * 255).round().to(torch.uint8)
    assert torch.allclose(encodings.encode(eight_bit, config), (eight_bit.float() / 255).sqrt(), atol=1e-6)
    windowed = config.replace(normalize="percentile")
    assert torch.allclose(encodings.encode(image, windowed), encodings.percentile_window(image).sqrt())
    lifted = encodings.on_off(image.sqrt(), SIZE)
    assert torch.allclose(encodings.encode(image, config.replace(encoding="on-off")), lifted)
    assert not torch.allclose(lifted, encodings.on_off(image, SIZE)), "the power law changes what the filters see"
    scaled = encodings.encode(image, config.replace(input_length=5.0))
    assert torch.allclose(scaled, image.sqrt() * 5.0 / image.sqrt().norm(), atol=1e-6)
    assert encodings.encode(image, config.replace(gamma=1.0)) is image


def test_image_folders_record_gamma_in_their_manifest_and_decode_again_for_another(tmp_path):
    synthetic.write_folders(tmp_path / "mammo", synthetic.SyntheticMammoSpec(patients=8, size=32, seed=2))
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), n_classes=3, input_size=16)
    raw = data.load_splits(config, lambda message: None)
    assert "gamma" not in raw.manifest
    splits = data.load_splits(config.replace(gamma=0.5), lambda message: None)
    assert splits.manifest["gamma"] == 0.5
    assert torch.allclose(splits.train.images, raw.train.images.sqrt(), atol=1e-6)
    (tmp_path / "run").mkdir()
    data.write_manifest(tmp_path / "run", splits)
    decoded: list[str] = []
    assert torch.equal(data.load_manifest(tmp_path / "run", config.replace(gamma=0.5), decoded.append).train.images,
                       splits.train.images)
    assert not any("decoding" in n for n in decoded)
    data.load_manifest(tmp_path / "run", config, decoded.append)
    assert any("decoding" in n for n in decoded), "images without the power law are decoded again"


def test_idx_images_load_at_input_length_and_image_folders_are_decoded_again_for_another(tmp_path):
    from conftest import tiny_config, write_mnist_idx

    write_mnist_idx(tmp_path / "data", n_train=30, n_test=10)
    splits = data.load_splits(tiny_config(tmp_path, n_train=None, n_test=None, input_length=9.0), lambda m: None)
    assert torch.linalg.vector_norm(splits.train.images, dim=1).tolist() == pytest.approx([9.0] * 30, rel=1e-6)
    synthetic.write_folders(tmp_path / "mammo", synthetic.SyntheticMammoSpec(patients=8, size=32, seed=2))
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), n_classes=3, input_size=16, input_length=4.0)
    splits = data.load_splits(config, lambda message: None)
    assert splits.manifest["input_length"] == 4.0
    (tmp_path / "run").mkdir()
    data.write_manifest(tmp_path / "run", splits)
    notices: list[str] = []
    assert torch.equal(data.load_manifest(tmp_path / "run", config, notices.append).train.images, splits.train.images)
    assert not any("decoding" in n for n in notices)
    again = data.load_manifest(tmp_path / "run", config.replace(input_length=2.0), notices.append)
    assert any("decoding" in n for n in notices), "images of another length are not reused"
    assert torch.linalg.vector_norm(again.train.images, dim=1).max() == pytest.approx(2.0, rel=1e-6)


def test_deskewed_idx_images_load_deskewed_and_image_folders_record_it_in_their_manifest(tmp_path):
    from conftest import tiny_config, write_mnist_idx

    write_mnist_idx(tmp_path / "data", n_train=30, n_test=10)
    raw = data.load_splits(tiny_config(tmp_path, n_train=None, n_test=None), lambda m: None)
    straight = data.load_splits(tiny_config(tmp_path, n_train=None, n_test=None, deskew=True), lambda m: None)
    for before, after in ((raw.train, straight.train), (raw.test, straight.test)):
        assert torch.allclose(after.images, encodings.deskewed(before.images.float() / 255, 28), atol=1e-5)
    synthetic.write_folders(tmp_path / "mammo", synthetic.SyntheticMammoSpec(patients=8, size=32, seed=2))
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), n_classes=3, input_size=16)
    assert "deskew" not in data.load_splits(config, lambda message: None).manifest
    splits = data.load_splits(config.replace(deskew=True), lambda message: None)
    assert splits.manifest["deskew"] is True
    (tmp_path / "run").mkdir()
    data.write_manifest(tmp_path / "run", splits)
    decoded: list[str] = []
    data.load_manifest(tmp_path / "run", config, decoded.append)
    assert any("decoding" in n for n in decoded), "images not deskewed are decoded again, not taken from the run"


def test_on_off_doubles_the_input_of_the_network_and_the_checkpoint_shapes():
    config = cfg.Config(input_size=SIZE, encoding="on-off", n_neurons=9)
    assert config.n_inputs == 2 * SIZE * SIZE and config.input_channels == 2
    assert config.tensor_shapes()["input_to_exc.weight"] == (2 * SIZE * SIZE, 9)
    from snnctl import network

    assert network.initial_tensors(config).weights.shape == (2 * SIZE * SIZE, 9)


def test_input_planes_puts_on_and_off_side_by_side():
    on, off = torch.arange(4.0), 10 + torch.arange(4.0)
    planes = encodings.input_planes(torch.cat([on, off]), 2)
    assert planes.tolist() == [[0.0, 1.0, 10.0, 11.0], [2.0, 3.0, 12.0, 13.0]]


def test_mammo_folders_load_encoded_and_the_manifest_keeps_the_encoded_images(tmp_path):
    synthetic.write_folders(tmp_path / "mammo", synthetic.SyntheticMammoSpec(patients=8, size=32, seed=2))
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), n_classes=3, input_size=16,
                        normalize="percentile", encoding="on-off")
    splits = data.load_splits(config, lambda message: None)
    assert splits.train.images.shape[1] == 2 * 16 * 16 and 0.0 <= splits.train.images.min() <= splits.train.images.max() <= 1.0
    assert splits.manifest["encoding"] == "on-off" and splits.manifest["normalize"] == "percentile"
    (tmp_path / "run").mkdir()
    data.write_manifest(tmp_path / "run", splits)
    decoded: list[str] = []
    again = data.load_manifest(tmp_path / "run", config, decoded.append)
    assert torch.equal(again.test.images, splits.test.images) and not any("decoding" in n for n in decoded)
    data.load_manifest(tmp_path / "run", config.replace(encoding="rate"), decoded.append)
    assert any("decoding" in n for n in decoded), "images encoded otherwise are not reused"


def test_encoding_keys_are_checked():
    with pytest.raises(cfg.ConfigError, match="encoding: 'spikes' is not one of rate, on-off"):
        cfg.Config(encoding="spikes").replace()
    with pytest.raises(cfg.ConfigError, match="normalize: 'minmax' is not one of none, percentile"):
        cfg.Config(normalize="minmax").replace()


def test_a_checkpoint_of_on_off_input_saves_reads_and_is_checked_against_its_doubled_shape(tmp_path):
    from snnctl import checkpoint, network
    from snnctl.errors import SnnctlError

    config = cfg.Config(input_size=8, encoding="on-off", n_neurons=4, n_classes=2)
    tensors = network.initial_tensors(config)
    path = checkpoint.save(checkpoint.Checkpoint(config, tensors, ["a", "b"]), tmp_path / "on-off.safetensors")
    loaded = checkpoint.load(path)
    assert loaded.config.encoding == "on-off" and torch.equal(loaded.tensors.weights, tensors.weights)
    rate = config.replace(encoding="rate")
    checkpoint.save(checkpoint.Checkpoint(rate, tensors, ["a", "b"]), tmp_path / "mismatch.safetensors")
    with pytest.raises(SnnctlError, match=r"'input_to_exc.weight' has shape \[128, 4\], the stored parameters imply \[64, 4\]"):
        checkpoint.read(tmp_path / "mismatch.safetensors")


def test_the_weights_figure_shows_on_and_off_weights_side_by_side(tmp_path):
    from snnctl import plots
    from snnctl.logs import receptive_field_grid

    size, n_neurons = 4, 3
    weights = torch.zeros(2 * size * size, n_neurons)
    weights[:size * size, 1] = 1.0  # neuron 1: ON weights only
    weights[size * size:, 2] = 2.0  # neuron 2: OFF weights only
    grid = receptive_field_grid(weights, size)
    assert grid.shape == (2 * size, 2 * 2 * size)  # 2 x 2 tiles, each size high and 2 x size wide
    assert grid[:size, 2 * size:3 * size].eq(1).all() and grid[:size, 3 * size:].eq(0).all()
    assert grid[size:, size:2 * size].eq(2).all() and grid[size:, :size].eq(0).all()
    figure = plots.weights_figure(weights, size, torch.tensor([0, 1, -1]), ["a", "b"])
    assert "ON | OFF" in figure.texts[0].get_text()
    assert plots.render(figure, "png").startswith(b"\x89PNG")


def test_the_readout_figure_of_on_off_input_shows_each_class_on_and_off_side_by_side(tmp_path):
    from snnctl import checkpoint, network, service
    from snnctl.readout import LinearReadout, vote
    from snnctl.service.figures import readout_maps

    size, n_neurons = 4, 3
    config = cfg.Config(input_size=size, encoding="on-off", n_neurons=n_neurons, n_classes=2, readout="linear",
                        readout_features="drive")
    tensors = network.initial_tensors(config)
    weights = torch.full((2 * size * size, n_neurons), 0.5)  # a field common to all three neurons...
    weights[:size * size, 1] += 1.0  # ... and beyond it, neuron 1 ON only
    weights[size * size:, 2] += 2.0  # neuron 2 OFF only
    tensors.weights.copy_(weights)
    one = np.ones(n_neurons, np.float32)
    readout = LinearReadout("square-standardize", 0 * one, one, np.array([[0, 1, 0], [0, 0, 1]], np.float32),
                            np.zeros(2, np.float32), 1.0, False, "1.0")
    labels = vote.assign(torch.eye(n_neurons)[:2], torch.tensor([0, 1]), 2, "sum")
    path = checkpoint.save(checkpoint.Checkpoint(config, tensors, ["a", "b"], labels, readout=readout),
                           tmp_path / "on-off.safetensors")
    maps = readout_maps(checkpoint.load(path))
    assert maps.shape == (2, size, 2 * size)  # each class: ON | OFF
    # against the layer's mean field (drive features): class a reads neuron 1, ON above the mean
    np.testing.assert_allclose(maps[0][:, :size], 2 / 3)
    np.testing.assert_allclose(maps[0][:, size:], -2 / 3)
    np.testing.assert_allclose(maps[1][:, :size], -1 / 3)
    np.testing.assert_allclose(maps[1][:, size:], 4 / 3)
    result = service.visualize("readout", path, tmp_path / "readout.png")
    assert (tmp_path / "readout.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "ON | OFF" in result.title


def test_exports_of_an_on_off_checkpoint_carry_the_doubled_input(tmp_path):
    import nir

    from snnctl import checkpoint, network, service

    config = cfg.Config(input_size=8, encoding="on-off", n_neurons=4, n_classes=2)
    path = checkpoint.save(checkpoint.Checkpoint(config, network.initial_tensors(config), ["a", "b"]),
                           tmp_path / "on-off.safetensors")
    service.export(path, "nir", tmp_path / "net.nir")
    graph = nir.read(str(tmp_path / "net.nir"))
    assert list(graph.nodes["input"].input_type["input"]) == [2 * 8 * 8]
    service.export(path, "npz", tmp_path / "net.npz")
    assert np.load(tmp_path / "net.npz")["input_to_exc.weight"].shape == (2 * 8 * 8, 4)


def test_a_nir_export_names_how_its_images_were_prepared_and_a_plain_one_says_nothing(tmp_path):
    import nir

    from snnctl import checkpoint, network, service

    config = cfg.Config(input_size=8, n_neurons=4, n_classes=2, deskew=True, normalize="percentile", gamma=0.5,
                        encoding="on-off", input_length=5.0)
    path = checkpoint.save(checkpoint.Checkpoint(config, network.initial_tensors(config), ["a", "b"]),
                           tmp_path / "prepared.safetensors")
    result = service.export(path, "nir", tmp_path / "prepared.nir")
    [note] = [note for note in result.not_carried if note.startswith("the input is each image")]
    assert (note.index("deskewed") < note.index("percentiles") < note.index("power 0.5") < note.index("ON and OFF")
            < note.index("length 5"))
    metadata = nir.read(str(tmp_path / "prepared.nir")).metadata
    assert (bool(metadata["deskew"]), str(metadata["normalize"]), str(metadata["encoding"])) == (True, "percentile",
                                                                                                    "on-off")
    assert float(metadata["input_length"]) == 5.0 and float(metadata["gamma"]) == 0.5 and not bool(metadata["clahe"])
    assert note in service.export(path, "bindsnet", tmp_path / "prepared.pt").not_carried
    plain = config.replace(deskew=False, normalize="none", gamma=1.0, encoding="rate", input_length=None)
    path = checkpoint.save(checkpoint.Checkpoint(plain, network.initial_tensors(plain), ["a", "b"]),
                           tmp_path / "plain.safetensors")
    assert not any(note.startswith("the input is") for note in service.export(path, "nir", tmp_path / "p.nir").not_carried)


def test_a_run_on_prepared_digits_keeps_deskew_and_gamma_in_its_checkpoint_and_evaluate_prepares_its_images(tmp_path):
    import json

    from typer.testing import CliRunner

    from conftest import tiny_config
    from snnctl import checkpoint as ckpt
    from snnctl.cli import app

    runner = CliRunner()
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, n_train=100, n_test=60)))
    trained = runner.invoke(app, ["train", str(params), "--set", "deskew=true", "--set", "gamma=0.5",
                                  "--out", str(tmp_path / "run"), "--json"])
    assert trained.exit_code == 0, trained.output
    run = json.loads(trained.stdout)
    saved = ckpt.load(run["checkpoint"]).config
    assert saved.deskew is True and saved.gamma == 0.5
    assert "deskew: true" in (tmp_path / "run" / "parameters.yaml").read_text()
    evaluated = runner.invoke(app, ["evaluate", run["checkpoint"], "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(run["test_accuracy"])
    inspected = runner.invoke(app, ["inspect", run["checkpoint"]])
    assert inspected.exit_code == 0, inspected.output
    assert "input 28x28 deskewed, grey levels to the power 0.5" in inspected.stdout


def run_figure_script(name: str, output, *options: str) -> None:
    """Run bench/NAME.py as a user does and check that it wrote a PNG to ``output``."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    result = subprocess.run([sys.executable, str(script), str(output), *options], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_deskew_figure_script_draws_the_bundled_digits_as_they_are_and_deskewed(tmp_path):
    run_figure_script("deskew_figure", tmp_path / "deskew.png")


def test_the_encodings_figure_shows_each_encoding_of_one_view_the_squared_one_beside_the_raw(tmp_path):
    from conftest import bench_module

    image = hand_made_image()
    shown = dict(bench_module("encodings_figure").panels(image))
    assert list(shown) == ["raw (rate)", "gamma: 2 (mammo-study)", "normalize: percentile", "percentile + clahe",
                           "on-off: ON", "on-off: OFF"]
    np.testing.assert_allclose(shown["gamma: 2 (mammo-study)"], image ** 2, atol=1e-6)
    assert all(panel.shape == image.shape for panel in shown.values())
    run_figure_script("encodings_figure", tmp_path / "encodings.png", "--size", "32")


def test_rate_with_on_off_puts_the_grey_levels_before_the_on_and_off_channels_of_the_whole_image():
    # a bright garment on black: on-off alone would mask the black as air; rate+on-off keeps
    # the outline's edges, since an outline is part of a garment's shape
    image = np.zeros((SIZE, SIZE))
    image[3:21, 4:20] = 0.8
    flat = torch.from_numpy(image).float().reshape(1, -1)
    config = cfg.Config(input_size=SIZE, encoding="rate+on-off", gamma=0.5)
    assert config.input_channels == 3 and config.n_inputs == 3 * SIZE * SIZE
    rates = encodings.encode(flat, config)
    assert rates.shape == (1, 3 * SIZE * SIZE)
    grey = flat ** 0.5
    torch.testing.assert_close(rates[:, :SIZE * SIZE], grey)
    torch.testing.assert_close(rates[:, SIZE * SIZE:], encodings.on_off(grey, SIZE))
    on, off = rates[0, SIZE * SIZE:2 * SIZE * SIZE].reshape(SIZE, SIZE), rates[0, 2 * SIZE * SIZE:].reshape(SIZE, SIZE)
    assert on[3, 12] > 0.5 and off[1, 12] > 0.1  # the outline: ON inside its edge, OFF on the black outside
    masked = encodings.encode(flat, config.replace(encoding="on-off"))
    assert float(masked[0, :SIZE * SIZE].reshape(SIZE, SIZE)[3, 12]) == 0.0, "on-off alone masks the outline"
    scaled = encodings.encode(flat, config.replace(input_length=5.0))
    assert float(torch.linalg.vector_norm(scaled)) == pytest.approx(5.0)  # the length of all three channels
    torch.testing.assert_close(scaled, rates * 5.0 / torch.linalg.vector_norm(rates))


def test_a_rate_with_on_off_run_trains_and_its_figures_and_exports_show_three_channels(tmp_path):
    import nir

    from snnctl import service

    config = cfg.Config(task="MNIST", data_dir=str(tmp_path / "absent"), n_train=40, n_test=20, n_neurons=4,
                        time=20, encoding="rate+on-off", update_interval=20, log_dir=str(tmp_path / "logs"),
                        baseline=False, checkpoint_every=0)
    trained = service.train(config, out=tmp_path / "run")
    assert trained.evaluation is not None
    weights = service.visualize("weights", tmp_path / "run", tmp_path / "weights.png")
    assert (tmp_path / "weights.png").read_bytes()[:4] == b"\x89PNG" and weights.title is not None
    service.export(tmp_path / "run", "nir", tmp_path / "net.nir")
    graph = nir.read(str(tmp_path / "net.nir"))
    assert list(graph.nodes["input"].input_type["input"]) == [3 * 28 * 28]
    assert str(graph.metadata["encoding"]) == "rate+on-off"
