"""What a newcomer meets first: help text, commands that find the newest run, shell
completion, --debug anywhere."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snnctl import service
from snnctl.cli import app, completion
from snnctl.errors import SnnctlError

from conftest import assert_one_line_error

runner = CliRunner()

COMMANDS = [[], ["train"], ["evaluate"], ["assign"], ["inspect"], ["export"], ["sweep"], ["visualize"],
            *[["visualize", figure] for figure in service.FIGURES]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "snnctl")
def test_help_names_each_flag_without_a_type(command):
    """Typer 0.29 printed `--json <bool>`: a flag takes no value, so its help shows none."""
    result = runner.invoke(app, [*command, "--help"], prog_name="snnctl", terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output and "Show this message and exit." in result.output
    if command and command != ["visualize"]:
        assert "--debug" in result.output  # accepted after the subcommand too
    if command == ["export"]:  # options that take a value still say which
        assert "<norse|snntorch|delays>" in result.output and "<s|ms>" in result.output
    if command in (["train"], ["assign"], ["sweep"], ["export"], ["visualize", "weights"]):
        assert re.search(r"--out(put)?\s+-o\s+<path>", result.output), result.output  # -o: what it writes


def test_help_starts_without_importing_torch():
    """`snnctl --help` stays instant: the CLI imports torch, BindsNET and the engines only
    in the commands that simulate (a readout's display names once pulled them all in)."""
    probe = "import sys, snnctl.cli; print(sorted(m for m in ('torch', 'bindsnet', 'numba') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.safetensors")
    result = runner.invoke(app, ["inspect", missing, "--debug"])
    assert isinstance(result.exception, SnnctlError) and "no such checkpoint" in str(result.exception)
    plain = runner.invoke(app, ["inspect", missing])  # and the next command is plain again
    assert_one_line_error(plain, 1, "no such checkpoint")


# ---------------------------------------------------------------- the newest finished run


def _fake_run(log_dir: Path, name: str, state: str, checkpoint: Path, when: float) -> Path:
    """A run directory holding a copy of ``checkpoint`` and a status.json saying ``state``."""
    run_dir = log_dir / "MNIST" / name
    run_dir.mkdir(parents=True)
    shutil.copyfile(checkpoint, run_dir / "checkpoint.safetensors")
    status = run_dir / service.STATUS_NAME
    status.write_text(json.dumps({"state": state, "checkpoint": str(run_dir / "checkpoint.safetensors")}))
    os.utime(status, (when, when))
    return run_dir / "checkpoint.safetensors"


def test_newest_finished_run_is_chosen_and_unfinished_ones_are_not(trained_run, tmp_path):
    source = Path(trained_run.checkpoint)
    older = _fake_run(tmp_path, "older", "finished", source, 1_000_000)
    newer = _fake_run(tmp_path, "newer", "finished", source, 2_000_000)
    _fake_run(tmp_path, "running", "running", source, 3_000_000)
    _fake_run(tmp_path, "stopped", "interrupted", source, 3_000_000)
    (tmp_path / "MNIST" / "broken").mkdir()
    (tmp_path / "MNIST" / "broken" / service.STATUS_NAME).write_text("{not json")
    assert service.finished_checkpoints(tmp_path) == [newer, older]
    said = []
    assert service.checkpoint_or_latest(None, tmp_path, said.append) == newer
    assert said == [f"using the newest finished run: {newer}"]
    assert service.checkpoint_or_latest(older, tmp_path, said.append) == older and len(said) == 1


def test_commands_without_a_checkpoint_read_the_newest_run_and_say_which(trained_run, tmp_path):
    log_dir = str(Path(trained_run.run_dir).parent.parent)  # log_dir/TASK/NAME
    result = runner.invoke(app, ["inspect", "--log-dir", log_dir, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"] == trained_run.checkpoint
    assert f"notice: using the newest finished run: {trained_run.checkpoint}" in result.stderr

    figure = tmp_path / "weights.png"
    drawn = runner.invoke(app, ["visualize", "weights", "--log-dir", log_dir, "-o", str(figure)])
    assert drawn.exit_code == 0, drawn.output
    assert figure.read_bytes().startswith(b"\x89PNG")
    exported = runner.invoke(app, ["export", "-f", "npz", "-o", str(tmp_path / "n.npz"), "--log-dir", log_dir])
    assert exported.exit_code == 0 and trained_run.checkpoint in exported.stderr, exported.output


@pytest.mark.parametrize("command", [["inspect"], ["evaluate"], ["assign"], ["visualize", "weights"],
                                     ["export", "-f", "npz", "-o", "x.npz"]], ids=lambda command: command[-1])
def test_no_checkpoint_and_no_run_is_one_line_naming_where_it_looked(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command)
    assert_one_line_error(result, 2, "no finished run", str(tmp_path / "logs"))
    assert sorted(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- shell completion


def test_set_completes_parameter_names_with_an_equals_sign():
    assert "n_neurons=" in completion.set_keys("n_") and "n_train=" in completion.set_keys("n_")
    assert completion.set_keys("no_such") == []


@pytest.mark.parametrize("typed, key, values", [
    ("theta", "theta_plus", ["0.05"]),  # the default
    ("one_sp", "one_spike", ["bindsnet", "off", "winner"]),  # the choices
    ("clah", "clahe", ["true", "false"]),
    ("n_tr", "n_train", ["null"]),
])
def test_one_set_key_left_completes_to_its_equals_sign_without_a_space(typed, key, values):
    """bash inserts what the words offered share and adds a space only after a lone word:
    ``--set KEY=`` must be left open for the value."""
    offered = completion.set_keys(typed)
    assert offered == [f"{key}=", *(f"{key}={value}" for value in values)]
    assert len(offered) > 1 and os.path.commonprefix(offered) == f"{key}="
    assert completion.set_keys(f"{key}={values[-1][:1]}") == [f"{key}={values[-1]}"]  # zsh and fish keep the =


def test_checkpoint_paths_complete_to_the_checkpoints_below_what_was_typed(tmp_path, monkeypatch):
    run = tmp_path / "logs" / "MNIST" / "run1"
    trial = tmp_path / "logs" / "MNIST" / "sweep-1" / "runs" / "trial0"
    for folder in (run, trial, tmp_path / ".hidden", tmp_path / "data"):
        folder.mkdir(parents=True)
    for path in (run / "checkpoint.safetensors", trial / "checkpoint.safetensors", run / "status.json",
                 tmp_path / "lone.safetensors", tmp_path / "notes.txt", tmp_path / ".hidden" / "old.safetensors"):
        path.touch()
    monkeypatch.chdir(tmp_path)
    everything = ["logs/MNIST/run1/checkpoint.safetensors", "logs/MNIST/sweep-1/runs/trial0/checkpoint.safetensors",
                  "lone.safetensors"]
    assert completion.checkpoints("") == everything
    assert completion.checkpoints("lo") == everything
    assert completion.checkpoints("logs/MNIST/r") == ["logs/MNIST/run1/checkpoint.safetensors"]
    assert completion.checkpoints(".h") == [".hidden/old.safetensors"]
    assert completion.checkpoints("data") == completion.checkpoints("missing/") == []
    (tmp_path / "a" / "b" / "c" / "d" / "e" / "f").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "d" / "e" / "f" / "deep.safetensors").touch()
    assert completion.checkpoints("a") == []  # deeper than MAX_DEPTH: not searched


def _complete_bash(words: str) -> list[str]:
    """What bash offers for the last word of ``words`` (the script Typer installs asks this)."""
    environment = {"_SNNCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    result = runner.invoke(app, [], prog_name="snnctl", env=environment)
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def test_bash_completes_commands_options_set_keys_and_checkpoints(tmp_path, monkeypatch):
    (tmp_path / "run.safetensors").touch()
    monkeypatch.chdir(tmp_path)
    assert _complete_bash("snnctl ev") == ["evaluate"]
    assert "--nir-time-unit" in _complete_bash("snnctl export --nir")
    assert _complete_bash("snnctl train --set theta") == ["theta_plus=", "theta_plus=0.05"]
    assert _complete_bash("snnctl inspect ru") == ["run.safetensors"]
    assert _complete_bash("snnctl visualize weights ru") == ["run.safetensors"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_complete_set_keys_and_checkpoints(shell, tmp_path, monkeypatch):
    (tmp_path / "run.safetensors").touch()
    monkeypatch.chdir(tmp_path)

    def offered(words: str) -> str:
        environment = {"_SNNCTL_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": words,
                       "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
        result = runner.invoke(app, [], prog_name="snnctl", env=environment)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "theta_plus=" in offered("snnctl train --set theta") and "n_neurons" not in offered("snnctl train --set theta")
    assert "run.safetensors" in offered("snnctl evaluate ru")
    assert "evaluate" in offered("snnctl ev")


def test_show_completion_prints_the_bash_script(monkeypatch):
    # Typer's switch for naming the shell instead of detecting the one it runs in
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = runner.invoke(app, ["--show-completion", "bash"], prog_name="snnctl")
    assert result.exit_code == 0, result.output
    assert "_SNNCTL_COMPLETE=complete_bash" in result.stdout and "complete -o default -F" in result.stdout


# ---------------------------------------------------------------- figures at the end of training


def test_training_leaves_its_figures_in_the_run_directory_and_tensorboard(trained_run):
    """weights, assignments and confusion as PNG files and TensorBoard images; the
    confusion counts every held-out image the run scored, and agrees with its accuracy."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    figures = Path(trained_run.run_dir) / "figures"
    for name in ("weights", "assignments", "confusion"):
        with Image.open(figures / f"{name}.png") as image:
            assert image.format == "PNG" and min(image.size) > 100
    events = EventAccumulator(trained_run.run_dir, size_guidance={"images": 0})
    events.Reload()
    assert {"weights", "figures/assignments", "figures/confusion"} <= set(events.Tags()["images"])
    confusion_image = events.Images("figures/confusion")[-1]
    assert confusion_image.step == trained_run.samples_seen and confusion_image.width > 100


def test_the_confusion_of_a_run_comes_from_its_test_counts(config_factory, monkeypatch):
    """The matrix drawn at the end of training holds each held-out image once, and its
    diagonal is the test accuracy the run reports (no second pass over the images)."""
    training = importlib.import_module("snnctl.service.train")  # the module, not service.train
    drawn = {}

    def keep(run_log, step, weights, assignments, class_names, confusion, caption):
        drawn.update(confusion=confusion, caption=caption, class_names=class_names)
        return []

    monkeypatch.setattr(training, "write_run_figures", keep)
    result = service.train(config_factory(n_train=40, n_test=30, n_neurons=16, update_interval=20))
    confusion = drawn["confusion"]
    assert confusion.shape == (10, 10) and len(drawn["class_names"]) == 10
    assert int(confusion.sum()) <= result.n_test == 30  # an image without a vote has no column
    assert int(confusion.trace()) / result.n_test == pytest.approx(result.test_accuracy.all_activity)
    assert drawn["caption"] == f"30 test images, all-activity vote: accuracy {result.test_accuracy.all_activity:.1%}"
