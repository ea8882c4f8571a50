"""The readouts in every command: train, evaluate, assign, inspect, export, the figures; the
pixel baseline, the verdict, and checkpoints of format version 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import service
from snnctl.cli import app
from snnctl.data import CACHE_DIR_VARIABLE
from snnctl.readout import ScoreReport
from snnctl.service import readouts

from conftest import assert_one_line_error, tiny_config, write_mnist_idx

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def write_version_1(source: Path, target: Path) -> Path:
    """``source`` as snnctl wrote checkpoints before the linear readout (format version 1):
    no readout tensors or metadata, and parameters without the keys version 2 added."""
    with safe_open(str(source), framework="np") as reader:
        metadata = dict(reader.metadata())
        arrays = {name: reader.get_tensor(name) for name in reader.keys() if not name.startswith("readout.")}
    metadata = {key: value for key, value in metadata.items() if not key.startswith("readout.")}
    parameters = json.loads(metadata["config"])
    for key in ("readout", "baseline", "readout_max_train", "readout_features"):
        del parameters[key]
    metadata.update(format_version="1", config=json.dumps(parameters))
    save_file(arrays, str(target), metadata=metadata)
    return target


def test_train_stores_the_linear_readout_and_reports_every_readout_with_the_baseline(trained_run):
    scores = trained_run.scores
    assert scores.readout == "vote" and scores.chance == pytest.approx(0.1)
    for report in (scores.vote, scores.linear, scores.baseline):
        assert report.n_images == trained_run.n_test and report.n_resamples == 1000
        low, high = report.intervals["balanced_accuracy"]
        assert low <= report.balanced_accuracy <= high
        assert report.auc is not None and 0.5 < report.auc <= 1
    # the vote's scores are the accuracy train has always reported
    assert scores.vote.accuracy == pytest.approx(trained_run.test_accuracy.all_activity)
    stored = ckpt.load(trained_run.checkpoint)
    assert stored.readout is not None and stored.readout.coef.shape == (10, stored.config.n_neurons)
    assert stored.info["test_scores"]["linear"]["accuracy"] == pytest.approx(scores.linear.accuracy)


def test_evaluate_reads_out_either_way_and_reproduces_train(trained_run):
    linear = run("evaluate", trained_run.checkpoint, "--readout", "linear", "--json")
    assert linear.exit_code == 0, linear.output
    document = json.loads(linear.stdout)
    assert document["readout"] == "linear" and document["no_prediction"] == 0
    scores = document["scores"]
    assert scores["linear"]["accuracy"] == pytest.approx(trained_run.scores.linear.accuracy)
    assert scores["baseline"]["accuracy"] == pytest.approx(trained_run.scores.baseline.accuracy)
    assert document["balanced_accuracy"] == pytest.approx(scores["linear"]["balanced_accuracy"])
    confusion = np.array(document["confusion"])
    assert np.trace(confusion) == round(scores["linear"]["accuracy"] * document["n_samples"])
    table = run("evaluate", trained_run.checkpoint, "--n", "40")
    assert table.exit_code == 0, table.output
    for words in ("linear readout", "pixel baseline", "chance: 10.00% balanced accuracy", "AUC"):
        assert words in table.stdout


def test_baseline_false_skips_the_baseline(checkpoint_copy, tmp_path):
    stored = ckpt.load(checkpoint_copy)
    path = ckpt.save(ckpt.Checkpoint(stored.config.replace(baseline=False), stored.tensors, stored.class_names,
                                     stored.labels, stored.progress, None, stored.info, readout=stored.readout),
                     tmp_path / "no-baseline.safetensors")
    result = service.evaluate(path, n=30)
    assert result.scores.baseline is None and result.scores.linear is not None


def test_relabeling_with_the_linear_readout_writes_a_new_file_and_leaves_the_original(checkpoint_copy):
    before = checkpoint_copy.read_bytes()
    result = run("assign", checkpoint_copy, "--readout", "linear", "--n", "300", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    output = Path(document["output"])
    assert output.name == "copy.mnist-linear.safetensors" and document["readout"] == "linear"
    assert checkpoint_copy.read_bytes() == before
    relabeled = ckpt.load(output)
    assert relabeled.config.readout == "linear" and relabeled.info["labels"]["readout"] == "linear"
    assert relabeled.readout is not None
    assert document["scores"]["linear"]["n_images"] == document["n_eval_samples"]
    evaluated = service.evaluate(output)
    assert evaluated.readout == "linear"  # the new file's own readout, without --readout


def test_a_version_1_checkpoint_loads_reads_out_and_is_relabeled(trained_run, tmp_path):
    old = write_version_1(Path(trained_run.checkpoint), tmp_path / "v1.safetensors")
    stored = ckpt.load(old)
    assert stored.readout is None and stored.config.readout == "vote"
    assert service.inspect(old).format_version == 1 and service.inspect(old).readout is None
    by_vote = service.evaluate(old)
    assert by_vote.accuracy.all_activity == pytest.approx(trained_run.test_accuracy.all_activity)
    assert by_vote.scores.linear is None and by_vote.scores.vote is not None
    refused = run("evaluate", old, "--readout", "linear")
    assert_one_line_error(refused, 1, "no linear readout", "--readout linear")
    relabeled = service.assign(old, readout="linear", n=300)
    assert ckpt.load(relabeled.output).readout is not None
    assert ckpt.read(relabeled.output).format_version == ckpt.FORMAT_VERSION


def test_a_readout_cut_short_is_refused(trained_run, tmp_path):
    with safe_open(trained_run.checkpoint, framework="np") as reader:
        metadata = dict(reader.metadata())
        arrays = {name: reader.get_tensor(name) for name in reader.keys() if name != "readout.scale"}
    save_file(arrays, str(tmp_path / "cut.safetensors"), metadata=metadata)
    assert_one_line_error(run("inspect", tmp_path / "cut.safetensors"), 1, "readout.scale")


def test_inspect_and_export_carry_the_readout(trained_run, tmp_path):
    shown = run("inspect", trained_run.checkpoint)
    assert shown.exit_code == 0 and "linear readout" in shown.stdout and "readout.coef" in shown.stdout
    document = json.loads(run("inspect", trained_run.checkpoint, "--json").stdout)
    assert document["format_version"] == 2 and document["readout"]["features"] == 100
    npz = tmp_path / "network.npz"
    assert run("export", trained_run.checkpoint, "--format", "npz", "--output", npz).exit_code == 0
    archive = np.load(npz)
    stored = ckpt.load(trained_run.checkpoint)
    np.testing.assert_array_equal(archive["readout.coef"], stored.readout.coef)
    assert json.loads(str(archive["metadata"]))["readout"]["readout.transform"] == "log1p-standardize"
    state = tmp_path / "state.pt"
    assert run("export", trained_run.checkpoint, "--format", "torch", "--output", state).exit_code == 0
    assert "readout.intercept" in torch.load(state, weights_only=True)


@pytest.mark.parametrize("figure", ["readout", "roc"])
def test_readout_and_roc_figures(trained_run, tmp_path, figure):
    output = tmp_path / f"{figure}.png"
    result = run("visualize", figure, trained_run.checkpoint, "-o", output, "--json")
    assert result.exit_code == 0, result.output
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(result.stdout)["figure"] == figure


def test_readout_map_is_the_weights_through_the_receptive_fields(trained_run):
    from snnctl.service.figures import readout_maps

    stored = ckpt.load(trained_run.checkpoint)
    maps = readout_maps(stored)
    assert maps.shape == (10, 28, 28)
    neuron = 3  # one neuron's share of class 2's map, by hand
    weights = stored.tensors.weights[:, neuron].double().numpy().reshape(28, 28)
    share = stored.readout.coef[2, neuron] / stored.readout.scale[neuron] * weights
    others = np.delete(stored.readout.coef[2] / stored.readout.scale, neuron) @ np.delete(
        stored.tensors.weights.double().numpy(), neuron, axis=1).T
    np.testing.assert_allclose(maps[2], share + others.reshape(28, 28), rtol=1e-5, atol=1e-6)


def _report(balanced: float, interval: tuple[float, float] | None = None) -> ScoreReport:
    return ScoreReport(100, balanced, balanced, {}, 0.5, None, None, {"balanced_accuracy": interval}, 0.95, 1000)


@pytest.mark.parametrize("network, interval, baseline, says", [
    (0.80, None, 0.70, None),
    (0.60, None, 0.70, "below the pixel baseline (60.0% against 70.0%"),
    (0.30, None, None, "no better than chance (30.0% balanced accuracy, chance 33.3%)"),
    (0.30, None, 0.45, "below the pixel baseline"),
    # 82 test images: a few points above chance, an interval that reaches below it
    (0.40, (0.30, 0.50), None,
     "not distinguishable from chance (40.0% balanced accuracy; its 95% interval, 30.0% to 50.0%, includes chance, "
     "33.3%)"),
    (0.40, (0.35, 0.45), None, None),
])
def test_verdict_says_plainly_when_the_network_is_below_the_baseline_or_chance(network, interval, baseline, says):
    scores = readouts.Scores("linear", _report(0.2), _report(network, interval),
                             _report(baseline) if baseline else None, 1 / 3, 100, None)
    verdict = readouts.verdict(scores)
    if says is None:
        assert verdict is None
    else:
        assert verdict.startswith("the network (linear readout) is") and says in verdict


def test_verdict_names_the_other_readout_when_it_is_above_the_baseline():
    # make demo: the vote below the pixel baseline, the linear readout of the same layer above it
    scores = readouts.Scores("vote", _report(0.879), _report(0.936), _report(0.901), 0.1, 4000, None)
    verdict = readouts.verdict(scores)
    assert verdict == ("the network (vote readout) is below the pixel baseline (87.9% against 90.1% balanced "
                       "accuracy); the same layer's linear readout reaches 93.6% (--readout linear)")
    assert "adds nothing" in readouts.verdict(readouts.Scores("vote", _report(0.879), _report(0.89), _report(0.901),
                                                              0.1, 4000, None))


def test_verdict_names_the_other_readout_when_it_is_clearly_above_chance():
    # a mammography fold relabeled for the vote: the vote at chance, the linear readout above it
    scores = readouts.Scores("vote", _report(0.407, (0.25, 0.556)), _report(0.542, (0.403, 0.676)), None, 1 / 3,
                             139, None)
    assert readouts.verdict(scores) == (
        "the network (vote readout) is not distinguishable from chance (40.7% balanced accuracy; its 95% interval, "
        "25.0% to 55.6%, includes chance, 33.3%); the same layer's linear readout is clearly above chance, 54.2% "
        "(--readout linear)")
    # the other readout at chance as well: nothing to point at
    both = readouts.Scores("vote", _report(0.407, (0.25, 0.556)), _report(0.45, (0.30, 0.60)), None, 1 / 3, 139, None)
    assert "the same layer" not in readouts.verdict(both)
    # named once: below the baseline and at chance, the other readout above the baseline
    once = readouts.Scores("vote", _report(0.30), _report(0.60), _report(0.50), 1 / 3, 139, None)
    assert readouts.verdict(once).count("the same layer's linear readout") == 1


def test_fit_rows_are_a_seeded_stratified_cap():
    labels = torch.tensor([0] * 80 + [1] * 20)
    config = tiny_config(Path("."), readout_max_train=20)
    rows = readouts.fit_rows(labels, config)
    assert len(rows) == 20 and torch.bincount(labels[rows]).tolist() == [16, 4]
    assert torch.equal(rows, readouts.fit_rows(labels, config))
    assert len(readouts.fit_rows(labels, config.replace(readout_max_train=None))) == 100


def bars(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened 28 x 28 uint8 images of 10 classes: a bright bar whose row is the class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for k, label in enumerate(labels):
        images[k, 2 + 2 * label:4 + 2 * label, 4:24] = 200
    return torch.from_numpy(images.reshape(n, -1)), torch.from_numpy(labels)


def test_baseline_on_pixels_that_tell_the_classes_apart(tmp_path):
    config = tiny_config(tmp_path)
    train_images, train_labels = bars(100, 0)
    test_images, test_labels = bars(50, 1)
    baseline = readouts.fit_baseline(train_images, train_labels, config, 10)
    assert baseline.transform == "standardize" and baseline.n_features == 784
    scores = readouts.score_all(config, [str(c) for c in range(10)], test_labels, vote=None, linear=None,
                                baseline=readouts.linear_outputs(baseline, test_images))
    assert scores.baseline.accuracy == 1.0 and scores.baseline.auc == 1.0
    assert scores.baseline.intervals["accuracy"] == (1.0, 1.0)
    assert scores.vote is None and scores.verdict is None  # no network readout, nothing to compare


def test_a_fit_stopped_at_the_iteration_cap_is_one_notice_not_a_warning(tmp_path, monkeypatch, recwarn):
    from snnctl.readout import linear

    monkeypatch.setattr(linear, "MAX_ITER", 2)  # far too few for lbfgs to converge
    images, labels = bars(100, 0)
    notices: list[str] = []
    baseline = readouts.fit_pixel_baseline(tiny_config(tmp_path), images, labels, 10, notices.append)
    assert baseline is not None and baseline.n_features == 784
    assert len(notices) == 1
    assert "pixel baseline" in notices[0] and "stopped at 2 solver iterations" in notices[0]
    assert not [w for w in recwarn if "converge" in str(w.message)]


def test_the_pixel_baseline_of_the_same_rows_is_fitted_once_and_read_back_as_fitted(tmp_path, monkeypatch):
    from snnctl.readout import LinearReadout

    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    fits: list[int] = []
    fit = LinearReadout.fit.__func__

    def counting(cls, features, *args, **kwargs):
        fits.append(len(features))
        return fit(cls, features, *args, **kwargs)

    monkeypatch.setattr(LinearReadout, "fit", classmethod(counting))
    config = tiny_config(tmp_path)
    images, labels = bars(100, 0)
    first = readouts.fit_baseline(images, labels, config, 10)
    again = readouts.fit_baseline(images, labels, config, 10)
    assert fits == [100]  # the second came from the cache
    for name, array in first.to_tensors().items():
        np.testing.assert_array_equal(array, again.to_tensors()[name], err_msg=name)
    assert (again.C, again.balanced, again.converged, again.grouped) == (first.C, first.balanced, first.converged,
                                                                         first.grouped)
    assert len(list((tmp_path / "cache").glob("pixel-baseline-*.safetensors"))) == 1

    # other rows, other labels, other groups or other settings are fits of their own
    readouts.fit_baseline(images[:90], labels[:90], config, 10)
    readouts.fit_baseline(images, labels.roll(1), config, 10)
    readouts.fit_baseline(images, labels, config, 10, groups=[f"P{k // 2}" for k in range(100)])
    readouts.fit_baseline(images, labels, config.replace(seed=config.seed + 1), 10)
    readouts.fit_baseline(images, labels, config.replace(balance=True), 10)
    assert fits == [100, 90, 100, 100, 100, 100]


def test_a_baseline_cache_that_does_not_read_is_fitted_again(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    config = tiny_config(tmp_path)
    images, labels = bars(100, 1)
    first = readouts.fit_baseline(images, labels, config, 10)
    [stored] = (tmp_path / "cache").glob("pixel-baseline-*.safetensors")
    stored.write_bytes(stored.read_bytes()[:100])
    again = readouts.fit_baseline(images, labels, config, 10)
    np.testing.assert_array_equal(first.coef, again.coef)
    assert stored.stat().st_size > 100  # made again and replaced


@pytest.mark.slow
def test_the_readout_never_sees_the_test_labels(tmp_path):
    """Two runs whose test labels differ (shuffled) fit the very same readout and baseline."""
    from conftest import synthetic_digits, write_idx

    results = []
    for name, shuffle in (("plain", False), ("poisoned", True)):
        raw = write_mnist_idx(tmp_path / name, n_train=100, n_test=40)
        if shuffle:
            _, labels = synthetic_digits(40, 1)
            write_idx(raw / "t10k-labels-idx1-ubyte", np.random.default_rng(0).permutation(labels), True)
        config = tiny_config(tmp_path, data_dir=str(tmp_path / name), n_train=None, n_test=None, name=name,
                             n_neurons=10, time=20)
        results.append(ckpt.load(service.train(config).checkpoint))
    plain, poisoned = results
    np.testing.assert_array_equal(plain.readout.coef, poisoned.readout.coef)
    assert plain.readout.C == poisoned.readout.C
