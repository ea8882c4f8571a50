"""snnctl visualize: every figure is written, opens as an image of the reported size and is
not blank; file naming and formats; the errors a user can make, each one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import data, plots, service
from snnctl.cli import app

from conftest import assert_one_line_error
from snnctl.errors import ConfigError

runner = CliRunner()

FIGURES = [
    ("weights", []),
    ("weights", ["--titles"]),
    ("assignments", []),
    ("theta", []),
    ("confusion", []),
    ("spikes", ["--index", "3"]),
    ("curves", []),
]
# A white page with a title has a gray-level variance near 110, empty labelled axes 600-800.
VARIANCE_FLOOR = 500.0


def assert_not_blank(path: Path, what: str) -> None:
    """Above the variance floor, and with the marks the figure is about: colored cells,
    tiles, bars or lines, or for the raster figure the dark digit and spike ticks."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    gray = rgb.mean(2)
    assert gray.var() > VARIANCE_FLOOR, f"{what}: variance {gray.var():.0f}"
    if what == "spikes":
        assert (gray < 128).mean() > 0.01, f"{what}: almost nothing dark"
    else:
        colored = (rgb.max(2) - rgb.min(2) > 60).mean()
        assert colored > 0.004, f"{what}: {colored:.2%} colored pixels"


@pytest.mark.parametrize("what, options", FIGURES, ids=[" ".join([w, *o]) for w, o in FIGURES])
def test_each_figure_is_a_nonblank_image_of_the_reported_size(trained_run, tmp_path, what, options):
    path = tmp_path / f"{what}.png"
    result = runner.invoke(app, ["visualize", what, trained_run.run_dir, "-o", str(path), "--json", *options])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["figure"] == what and document["output"] == str(path) and document["format"] == "png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (document["width"], document["height"])
        assert min(image.size) >= 400
    assert_not_blank(path, what)


def test_the_file_name_is_printed_alone_on_stdout(trained_run, tmp_path):
    path = tmp_path / "theta.png"
    result = runner.invoke(app, ["visualize", "theta", trained_run.checkpoint, "-o", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}\n"


def test_weight_tiles_fill_a_square_grid_of_the_layer(trained_run, tmp_path):
    stored = ckpt.load(trained_run.checkpoint)
    side = plots.grid_side(stored.config.n_neurons)
    result = service.visualize("weights", Path(trained_run.run_dir), tmp_path / "w.png")
    # every weight gets at least one screen pixel
    assert min(result.width, result.height) >= side * stored.config.input_size
    assert f"{stored.config.n_neurons} excitatory neurons" in result.title
    titled = service.visualize("weights", Path(trained_run.run_dir), tmp_path / "t.png", titles=True)
    with Image.open(result.output) as plain, Image.open(titled.output) as labelled:
        assert plain.size == labelled.size
        assert not np.array_equal(np.asarray(plain), np.asarray(labelled))  # the class names are drawn


def test_large_layers_keep_a_pixel_per_weight(tmp_path):
    n = 1600
    figure = plots.weights_figure(torch.rand(784, n), 28, torch.randint(-1, 10, (n,)), [str(c) for c in range(10)])
    path = tmp_path / "large.png"
    path.write_bytes(plots.render(figure, "png"))
    with Image.open(path) as image:
        assert min(image.size) >= plots.grid_side(n) * 28
    assert_not_blank(path, "weights")
    grid = tmp_path / "assignments.png"
    grid.write_bytes(plots.render(plots.assignments_figure(torch.randint(-1, 10, (n,)), [str(c) for c in range(10)]),
                                  "png"))
    assert_not_blank(grid, "assignments")


def test_spikes_figure_names_the_true_and_predicted_class(trained_run, tmp_path):
    stored = ckpt.load(trained_run.checkpoint)
    result = service.visualize("spikes", Path(trained_run.checkpoint), tmp_path / "s.png", index=5)
    test_set = data.load_splits(stored.config, lambda message: None).test
    assert f"true class {test_set.class_names[int(test_set.labels[5])]}," in result.title
    assert "predicted" in result.title


@pytest.mark.parametrize("changes", [{"batch_size": 4}, {"batch_size": 3, "patch_size": 12}],
                         ids=["batches of 4", "windows in batches of 3"])
def test_the_spikes_figure_predicts_what_evaluate_predicts_in_batches_and_windows(tmp_path, changes):
    import csv

    from conftest import tiny_config

    checkpoint = Path(service.train(tiny_config(tmp_path, n_train=120, n_test=12, n_neurons=25, time=50,
                                                **changes)).checkpoint)
    predictions = tmp_path / "predictions.csv"
    service.evaluate(checkpoint, predictions=predictions)
    rows = list(csv.DictReader(predictions.open()))
    for index in range(7):
        figure = service.visualize("spikes", checkpoint, tmp_path / f"s{index}.png", index=index)
        assert f"predicted {rows[index]['all_activity'] or 'none'}" in figure.title, (index, figure.title)


def test_the_input_raster_is_the_input_the_fast_engine_presents(trained_run):
    import numpy as np

    from snnctl import engine as engines

    stored = ckpt.load(trained_run.checkpoint)
    engine = engines.make_engine(stored.config, stored.tensors)
    images = data.load_splits(stored.config, lambda message: None).test.images[:3]
    raster = engine.input_spikes(images, 1234)
    assert raster.shape == (stored.config.steps, 3, stored.config.n_inputs) and raster.any()
    kernels, pixels = engine.kernels, np.ascontiguousarray(images.numpy(), dtype=np.float32)
    drawn = kernels.poisson_events(pixels, np.float32(engines.rate_per_unit(stored.config, images)),
                                   stored.config.steps, stored.config.dt, kernels.rng_states(1234, 3))
    from_raster = kernels.dense_to_events(np.ascontiguousarray(raster.numpy().astype(np.uint8)))
    assert all(np.array_equal(a, b) for a, b in zip(drawn, from_raster))


def test_the_spikes_figure_predicts_what_evaluate_predicts_for_its_image(trained_run, tmp_path):
    import csv

    predictions = tmp_path / "predictions.csv"
    service.evaluate(Path(trained_run.checkpoint), predictions=predictions)
    rows = list(csv.DictReader(predictions.open()))
    for index in range(8):
        figure = service.visualize("spikes", Path(trained_run.checkpoint), tmp_path / f"s{index}.png", index=index)
        assert f"predicted {rows[index]['all_activity'] or 'none'}" in figure.title, (index, figure.title)


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".pdf", b"%PDF")])
def test_the_format_follows_the_extension(trained_run, tmp_path, suffix, magic):
    path = tmp_path / f"assignments{suffix}"
    result = service.visualize("assignments", Path(trained_run.checkpoint), path)
    assert result.format == suffix[1:]
    assert magic in path.read_bytes()[:2000]


def test_default_output_lies_next_to_the_checkpoint_and_is_not_overwritten(checkpoint_copy):
    expected = checkpoint_copy.with_name("copy-theta.png")
    result = runner.invoke(app, ["visualize", "theta", str(checkpoint_copy)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{expected}\n" and expected.is_file()
    before = expected.read_bytes()
    again = runner.invoke(app, ["visualize", "theta", str(checkpoint_copy)])
    assert_one_line_error(again, 2, str(expected), "--force")
    assert expected.read_bytes() == before
    assert runner.invoke(app, ["visualize", "theta", str(checkpoint_copy), "--force"]).exit_code == 0


@pytest.fixture
def unlabelled(checkpoint_copy, tmp_path) -> Path:
    stored = ckpt.load(checkpoint_copy)
    stored.labels = None
    return ckpt.save(stored, tmp_path / "unlabelled.safetensors")


def test_a_checkpoint_without_labels_has_no_assignments_figure(unlabelled, tmp_path):
    result = runner.invoke(app, ["visualize", "assignments", str(unlabelled), "-o", str(tmp_path / "a.png")])
    assert_one_line_error(result, 1, "no label state", "snnctl assign")
    assert not (tmp_path / "a.png").exists()
    titled = runner.invoke(app, ["visualize", "weights", str(unlabelled), "--titles", "-o", str(tmp_path / "w.png")])
    assert_one_line_error(titled, 1, "no label state")
    stored = ckpt.load(unlabelled)  # a run stopped before its first labels: finishing it is the remedy
    stored.progress.finished = False
    stopped = ckpt.save(stored, tmp_path / "stopped.safetensors")
    evaluated = runner.invoke(app, ["evaluate", str(stopped)])
    assert_one_line_error(evaluated, 1, "no label state", f"snnctl train --resume {stopped}", "snnctl assign")
    # without titles its weights still draw
    assert runner.invoke(app, ["visualize", "weights", str(unlabelled), "-o", str(tmp_path / "w.png")]).exit_code == 0


def test_unknown_figure_is_one_line_naming_the_figures(trained_run):
    result = runner.invoke(app, ["visualize", "receptive", trained_run.checkpoint])
    assert_one_line_error(result, 2, "'receptive'", ", ".join(service.FIGURES))
    with pytest.raises(ConfigError):
        service.visualize("receptive", Path(trained_run.checkpoint))


@pytest.mark.parametrize("name, code, words", [
    ("figure.jpg", 2, ["'.jpg'", ".png, .svg, .pdf"]),
    ("no/such/dir/figure.png", 2, ["no such directory"]),
])
def test_bad_output_paths(trained_run, tmp_path, name, code, words):
    result = runner.invoke(app, ["visualize", "theta", trained_run.checkpoint, "-o", str(tmp_path / name)])
    assert_one_line_error(result, code, *words)


def test_missing_source_and_run_directory_without_curves(checkpoint_copy, tmp_path):
    assert_one_line_error(runner.invoke(app, ["visualize", "weights", str(tmp_path / "nowhere")]), 1, "no such")
    # a folder holding only a checkpoint: no TensorBoard event files to draw curves from
    run = tmp_path / "bare"
    run.mkdir()
    checkpoint_copy.rename(run / ckpt.CHECKPOINT_NAME)
    assert_one_line_error(runner.invoke(app, ["visualize", "curves", str(run), "-o", str(tmp_path / "c.png")]), 1,
                    "TensorBoard")
    assert runner.invoke(app, ["visualize", "theta", str(run), "-o", str(tmp_path / "t.png")]).exit_code == 0


def test_spikes_index_out_of_range(trained_run, tmp_path):
    result = runner.invoke(app, ["visualize", "spikes", trained_run.checkpoint, "--index", "99999",
                                 "-o", str(tmp_path / "s.png")])
    assert_one_line_error(result, 2, "--index", "out of range")


def test_every_figure_has_help_with_examples():
    for what in service.FIGURES:
        result = runner.invoke(app, ["visualize", what, "--help"])
        assert result.exit_code == 0 and f"snnctl visualize {what}" in result.stdout, what
