"""evaluate, assign and inspect: everything a trained checkpoint does without retraining."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import service
from snnctl.cli import app

from conftest import assert_one_line_error

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_evaluate_reproduces_the_test_accuracy_train_reported(trained_run):
    result = run("evaluate", trained_run.checkpoint, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["accuracy"]["all_activity"] == pytest.approx(trained_run.test_accuracy.all_activity)
    assert document["accuracy"]["proportion_weighting"] == pytest.approx(trained_run.test_accuracy.proportion_weighting)
    assert document["n_samples"] == trained_run.n_test
    for key in ("balanced_accuracy", "classes", "per_class", "confusion", "samples_per_second"):
        assert key in document
    confusion = np.array(document["confusion"])
    assert confusion.shape == (10, 10)
    assert confusion.sum() == document["n_samples"] - document["no_prediction"]
    assert np.trace(confusion) == round(document["accuracy"]["all_activity"] * document["n_samples"])
    assert [c["name"] for c in document["per_class"]] == [str(d) for d in range(10)]


def test_a_checkpoint_trained_on_a_gpu_evaluates_on_a_machine_without_one(trained_run, tmp_path, monkeypatch):
    stored = ckpt.load(trained_run.checkpoint)
    stored.config = stored.config.replace(device="cuda")
    path = ckpt.save(stored, tmp_path / "from-a-gpu.safetensors")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = run("evaluate", path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"]["all_activity"] == pytest.approx(trained_run.test_accuracy.all_activity)
    assert "trained with device: cuda, and there is no CUDA device here: running on device auto" in result.stderr
    # a missing file named with brackets is one plain line, not Rich markup
    assert_one_line_error(run("evaluate", tmp_path / "[/x].safetensors"), 1, "[/x].safetensors: no such checkpoint")
    # asked for, the GPU is still an error where there is none
    assert_one_line_error(run("evaluate", path, "--device", "cuda"), 2, "no CUDA device is available")


def test_evaluate_says_when_it_scores_a_run_in_progress_or_fewer_images_than_asked(trained_run, tmp_path):
    stored = ckpt.load(trained_run.checkpoint)
    stored.progress.finished = False
    path = ckpt.save(stored, tmp_path / "unfinished.safetensors")
    result = run("evaluate", path, "--n", trained_run.n_test + 50, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_samples"] == trained_run.n_test
    notices = [line for line in result.stderr.splitlines() if line.startswith("notice:")]
    assert any("a run in progress" in line and f"snnctl train --resume {path}" in line for line in notices), notices
    assert any(f"--n {trained_run.n_test + 50}: the test images number {trained_run.n_test}" in line
               for line in notices), notices
    # labels made by assign come from a whole split, not from the run's last window
    assign = run("assign", path, "--out", tmp_path / "assigned.safetensors", "--n", 50)
    assert assign.exit_code == 0, assign.output
    assigned = run("evaluate", tmp_path / "assigned.safetensors", "--n", 10)
    assert assigned.exit_code == 0 and "in progress" not in assigned.stderr
    finished = run("evaluate", trained_run.checkpoint, "--n", 10)
    assert finished.exit_code == 0 and "in progress" not in finished.stderr and "--n 10" not in finished.stderr


def test_evaluate_table_and_predictions_file(trained_run, tmp_path):
    predictions = tmp_path / "predictions.csv"
    result = run("evaluate", trained_run.checkpoint, "--split", "train", "--n", "50", "--predictions", predictions)
    assert result.exit_code == 0, result.output
    assert "balanced accuracy" in result.stdout and "Confusion matrix" in result.stdout
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 50
    assert set(rows[0]) >= {"source", "label", "all_activity", "proportion_weighting", "score_0", "score_9"}
    again = run("evaluate", trained_run.checkpoint, "--n", "5", "--predictions", predictions)
    assert again.exit_code == 2 and "exists" in again.stderr
    assert len(list(csv.DictReader(predictions.open()))) == 50  # the earlier result is not overwritten


def test_evaluate_with_another_readout_changes_only_the_vote(trained_run):
    by_sum = service.evaluate(Path(trained_run.checkpoint), reduction="sum")
    by_max = service.evaluate(Path(trained_run.checkpoint), reduction="max")
    assert (by_sum.reduction, by_max.reduction) == ("sum", "max")
    assert by_sum.n_samples == by_max.n_samples
    assert by_sum.accuracy != by_max.accuracy or by_sum.confusion != by_max.confusion


def test_assign_writes_a_new_checkpoint_and_leaves_the_input_alone(checkpoint_copy, tmp_path):
    before = checkpoint_copy.read_bytes()
    output = tmp_path / "mean.safetensors"
    result = run("assign", checkpoint_copy, "--reduction", "mean", "--out", output, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert checkpoint_copy.read_bytes() == before
    relabeled = ckpt.load(output)
    assert relabeled.config.reduction == "mean"
    assert relabeled.config.device == "auto"  # the training's, not the --device it was labelled on
    assert relabeled.labels.neurons_per_class(10) == document["neurons_per_class"]
    assert sum(document["neurons_per_class"]) + document["unassigned"] == relabeled.config.n_neurons
    assert document["changed"] == int((relabeled.labels.assignments != ckpt.load(checkpoint_copy).labels.assignments).sum())
    assert set(document["new_accuracy"]) == {"all_activity", "proportion_weighting"}
    # the old labels score with their own readout (sum): what train reported for them
    assert document["old_accuracy"] == pytest.approx(ckpt.load(checkpoint_copy).info["test_accuracy"])
    # the same weights: assignment never changes what the network learned
    assert torch.equal(relabeled.tensors.weights, ckpt.load(checkpoint_copy).tensors.weights)
    refused = run("assign", checkpoint_copy, "--out", output)
    assert refused.exit_code == 2 and "exists" in refused.stderr


def test_assign_with_the_runs_own_settings_gives_the_runs_labels_and_readout(checkpoint_copy, tmp_path):
    output = tmp_path / "again.safetensors"
    result = run("assign", checkpoint_copy, "-o", output, "--json")
    assert result.exit_code == 0, result.output
    document, stored, again = json.loads(result.stdout), ckpt.load(checkpoint_copy), ckpt.load(output)
    assert document["changed"] == 0
    assert torch.equal(again.labels.assignments, stored.labels.assignments)
    assert torch.equal(again.labels.rates, stored.labels.rates)
    assert document["new_accuracy"] == pytest.approx(stored.info["test_accuracy"])
    assert np.array_equal(again.readout.coef, stored.readout.coef)


def test_assign_in_place_replaces_the_label_state(checkpoint_copy):
    result = run("assign", checkpoint_copy, "--reduction", "max", "--in-place", "--n", "300")
    assert result.exit_code == 0, result.output
    stored = ckpt.load(checkpoint_copy)
    assert stored.config.reduction == "max"
    assert stored.info["labels"]["n_samples"] == 300


def write_png_folder(root: Path, per_class: dict[str, int]) -> Path:
    """Class folders of 8-bit PNGs: 'bright' images are bright in the top half, 'dark' in the bottom."""
    rng = np.random.default_rng(0)
    for index, (name, count) in enumerate(per_class.items()):
        folder = root / name
        folder.mkdir(parents=True)
        for k in range(count):
            pixels = rng.integers(0, 40, size=(40, 40)).astype(np.uint8)
            rows = slice(0, 20) if index == 0 else slice(20, 40)
            pixels[rows] = 230
            Image.fromarray(pixels).save(folder / f"{k:03d}.png")
    return root


def test_relabel_an_mnist_layer_on_an_image_folder(checkpoint_copy, tmp_path):
    folder = write_png_folder(tmp_path / "mammo", {"bright": 20, "dark": 20})
    output = tmp_path / "on-mammo.safetensors"
    result = run("assign", checkpoint_copy, "--task", "MAMMO", "--data-dir", folder, "--out", output, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["classes"] == ["bright", "dark"]
    assert document["changed"] is None and document["old_accuracy"] is None
    relabeled = ckpt.load(output)
    assert (relabeled.config.task, relabeled.config.n_classes, relabeled.class_names) == ("MAMMO", 2, ["bright", "dark"])
    assert relabeled.config.input_size == 28  # images are resized to the layer's input
    evaluated = run("evaluate", output, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["classes"] == ["bright", "dark"] and report["positive_class"] == "dark"
    # two classes that differ this much: the relabeled MNIST layer tells them apart
    assert report["accuracy"]["all_activity"] >= 0.75


def test_evaluate_on_data_with_other_classes_asks_for_assign(trained_run, tmp_path):
    folder = write_png_folder(tmp_path / "mammo", {"a": 6, "b": 6})
    result = run("evaluate", trained_run.checkpoint, "--task", "MAMMO", "--data-dir", folder)
    assert_one_line_error(result, 1, "snnctl assign")


def test_inspect_reports_what_is_inside(trained_run):
    result = run("inspect", trained_run.checkpoint, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format_version"] == ckpt.FORMAT_VERSION
    assert document["model"] == "diehl-cook-2015"
    assert document["samples_seen"] == 1000 and document["finished"] is True
    names = {t["name"]: t for t in document["tensors"]}
    assert names["input_to_exc.weight"]["shape"] == [784, 100]
    assert sum(document["neurons_per_class"].values()) + document["unassigned"] == 100
    assert set(document["versions"]) == {"snnctl", "torch", "bindsnet"}
    table = run("inspect", trained_run.checkpoint)
    assert "input_to_exc.weight" in table.stdout and "diehl-cook-2015" in table.stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in table.stdout.splitlines()
            if line.count("│") == 3}
    # parameters as a parameter file writes them
    assert (rows["download"], rows["n_train"], rows["nu_pre"]) == ("false", "1000", "0.0001")
    assert rows["name"] == "tiny" and rows["log_dir"].endswith("logs")


def _truncated(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / "truncated.safetensors"
    target.write_bytes(path.read_bytes()[:-1000])
    return target


def _foreign(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3, 3)}, str(target), metadata={"format": "pt"})
    return target


def _wrong_shape(path: Path, tmp_path: Path) -> Path:
    stored = ckpt.load(path)
    stored.tensors.theta = torch.zeros(7)
    target = tmp_path / "shape.safetensors"
    ckpt.save(stored, target)
    return target


def _not_safetensors(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"PK\x03\x04 this is a zip, not safetensors")
    return target


@pytest.mark.parametrize("make, message", [
    (lambda p, t: t / "missing.safetensors", "no such checkpoint file"),
    (lambda p, t: t, "is a directory without a checkpoint (a run directory holds checkpoint.safetensors)"),
    (_not_safetensors, "not a readable safetensors file"),
    (_truncated, "safetensors"),
    (_foreign, "not an snnctl checkpoint"),
    (_wrong_shape, "tensor 'exc.theta' has shape [7]"),
])
@pytest.mark.parametrize("command", ["evaluate", "assign", "inspect"])
def test_bad_checkpoints_are_one_line_exit_1_and_write_nothing(checkpoint_copy, tmp_path, make, message, command):
    path = make(checkpoint_copy, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(command, path)
    assert_one_line_error(result, 1, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_study_or_sweep_directory_given_as_a_checkpoint_names_its_runs_checkpoints(checkpoint_copy, tmp_path):
    study = tmp_path / "study"
    for fold in range(5):
        (study / "runs" / f"fold-{fold}").mkdir(parents=True)
        (study / "runs" / f"fold-{fold}" / "checkpoint.safetensors").write_bytes(checkpoint_copy.read_bytes())
    result = run("evaluate", study)
    assert_one_line_error(result, 1, f"{study}: is a directory without a checkpoint",
                          f"its runs' checkpoints: {study / 'runs' / 'fold-0' / 'checkpoint.safetensors'}, ",
                          "and 2 more")


def test_every_checkpoint_command_takes_a_run_directory_as_it_takes_its_checkpoint(checkpoint_copy, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    checkpoint = run_dir / "checkpoint.safetensors"
    checkpoint.write_bytes(checkpoint_copy.read_bytes())
    for command in (["inspect", "--json"], ["evaluate", "--json", "--n", "50"]):
        by_file, by_dir = (run(command[0], source, *command[1:]) for source in (checkpoint, run_dir))
        assert by_dir.exit_code == 0, by_dir.output
        same = [{k: v for k, v in json.loads(r.stdout).items() if k != "samples_per_second"} for r in (by_dir, by_file)]
        assert same[0] == same[1] and same[0]["checkpoint"] == str(checkpoint)
    exported = run("export", run_dir, "--format", "npz", "--output", tmp_path / "layer.npz")
    assert exported.exit_code == 0, exported.output
    assert np.load(tmp_path / "layer.npz")["exc.theta"].shape == (100,)
    relabeled = run("assign", run_dir, "--n", "200", "--out", tmp_path / "relabeled.safetensors")
    assert relabeled.exit_code == 0, relabeled.output
    assert (tmp_path / "relabeled.safetensors").is_file() and sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint.safetensors"]


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "inspect", str(tmp_path / "missing.safetensors")])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception) and "no such checkpoint" in str(result.exception)


def test_assign_untrained_reads_out_the_layer_training_started_from(checkpoint_copy):
    from snnctl import network as net

    before = checkpoint_copy.read_bytes()
    result = run("assign", checkpoint_copy, "--readout", "linear", "--untrained", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["untrained"] is True and document["output"].endswith("-untrained.safetensors")
    assert checkpoint_copy.read_bytes() == before
    trained, control = ckpt.load(checkpoint_copy), ckpt.load(Path(document["output"]))
    initial = net.initial_tensors(trained.config).weights
    assert torch.allclose(control.tensors.weights, initial * trained.config.norm / initial.sum(0))
    assert torch.allclose(control.tensors.weights.sum(0), torch.full((trained.config.n_neurons,), trained.config.norm))
    assert not torch.allclose(control.tensors.weights, trained.tensors.weights)
    assert torch.count_nonzero(control.tensors.theta) == 0
    assert control.progress.samples_seen == 0 and control.info["labels"]["untrained"] is True
    assert control.readout is not None and 0.0 <= document["scores"]["linear"]["balanced_accuracy"] <= 1.0
    table = run("assign", checkpoint_copy, "--readout", "linear", "--untrained", "--force")
    assert table.exit_code == 0 and "untrained: the weights training started from" in table.stdout
    assert "n/a (untrained layer)" in table.stdout
    refused = run("assign", checkpoint_copy, "--untrained", "--in-place")
    assert_one_line_error(refused, 2, "--untrained writes a new file", "replace the trained layer")
    assert checkpoint_copy.read_bytes() == before
    evaluated = run("evaluate", document["output"], "--readout", "linear", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["scores"]["linear"]["balanced_accuracy"] == pytest.approx(
        document["scores"]["linear"]["balanced_accuracy"])


def test_a_run_given_a_relative_data_dir_is_evaluated_on_the_same_images_from_another_directory(tmp_path, monkeypatch):
    from conftest import tiny_config, write_mnist_idx

    write_mnist_idx(tmp_path / "work" / "digits", n_train=60, n_test=30)
    monkeypatch.chdir(tmp_path / "work")
    config = tiny_config(tmp_path, data_dir="digits", n_neurons=9, update_interval=30)
    trained = service.train(config, out=tmp_path / "run")
    stored = service.inspect(Path(trained.checkpoint)).parameters
    assert stored["data_dir"] == str(tmp_path / "work" / "digits")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    said: list[str] = []
    report = service.evaluate(Path(trained.checkpoint), notice=said.append)
    assert report.n_samples == 30 and not any("subset" in message for message in said), said
