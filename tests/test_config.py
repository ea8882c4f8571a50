"""Parameter files: defaults, both original files, overrides, and every kind of bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from snnctl import config as cfg
from snnctl.cli import app
from snnctl.errors import ConfigError
from snnctl.yaml_reader import parse_yaml

from conftest import FIXTURES, assert_one_line_error

runner = CliRunner()


def write(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_original_readme_table():
    defaults = cfg.Config()
    table = dict(task="MNIST", log_dir="./logs", time=100, intensity=128, n_classes=10, batch_size=16, seed=1234,
                 n_neurons=100, input_size=28, reduction="sum", theta_plus=0.05, dt=1.0, inh=120, exc=22.5)
    assert {key: getattr(defaults, key) for key in table} == table
    assert (defaults.data_dir, defaults.epochs, defaults.n_train, defaults.n_test) == ("./data", 1, None, None)


def test_original_mnist_file_loads_unchanged():
    config = cfg.load(FIXTURES / "mnist.yaml")
    assert (config.task, config.n_neurons, config.batch_size, config.time, config.dt) == ("MNIST", 400, 128, 100, 1.0)
    # the one `reduction` key of the original sets the readout and the STDP batch combination
    assert (config.reduction, config.stdp_reduction) == ("max", "max")
    # as the original run.py: DiehlAndCook2015v2 in BindsNET's one-step mode
    assert (config.model, config.one_step, config.encoder) == ("diehl-cook-2015-v2", True, "PoissonEncoder")


def test_original_inbreast_file_loads_unchanged():
    config = cfg.load(FIXTURES / "inbreast.yaml")
    assert (config.task, config.n_classes, config.input_size, config.n_neurons) == ("MAMMO", 2, 128, 400)
    assert (config.time, config.inh, config.batch_size, config.name) == (250, 400.0, 8, "n400_inh_400")


def test_flat_file_and_overrides(tmp_path):
    path = write(tmp_path, "n_neurons: 49\nreduction: mean\nepochs: 2\n")
    config = cfg.load(path, ["time=50", "one_spike=off", "n_train=300", "intensity=64", "nu_pre=5e-5"])
    assert config.nu_pre == 5e-5  # YAML 1.1 reads 5e-5 as a string: still a number here
    assert (config.n_neurons, config.reduction, config.epochs) == (49, "mean", 2)
    assert (config.time, config.one_spike, config.n_train, config.intensity) == (50, "off", 300, 64.0)
    assert config.stdp_reduction == "sum"  # flat files keep the two reductions apart


def test_resolved_parameters_round_trip(tmp_path):
    config = cfg.load(FIXTURES / "mnist.yaml", ["n_neurons=36"])
    path = write(tmp_path, cfg.dump_yaml(config), "parameters.yaml")
    assert cfg.load(path) == config
    assert "n_neurons: 36\n" in cfg.dump_text(config)


@pytest.mark.parametrize(
    "text, message",
    [
        ("n_nerons: 10\n", "unknown key 'n_nerons' (did you mean 'n_neurons'?)"),
        ("time: 0\n", "time: 0 is out of range, must be > 0"),
        ("n_neurons: 0\n", "n_neurons: 0 is out of range, must be >= 1"),
        ("dt: -1\n", "dt: -1.0 is out of range, must be > 0"),
        ("nu_decay: 0\n", "nu_decay: 0.0 is out of range, must be > 0"),
        ("input_length: 0\n", "input_length: 0.0 is out of range, must be > 0"),
        ("gamma: 0\n", "gamma: 0.0 is out of range, must be > 0"),
        ("reduction: median\n", "reduction: 'median' is not one of sum, mean, max"),
        ("n_neurons: many\n", "n_neurons: 'many' is not an integer"),
        ("batch_size: 2.5\n", "batch_size: 2.5 is not an integer"),
        ("time: true\n", "time: true is not an integer"),  # as typed, not Python's True
        ("workers: 0\n", "workers: '0' is not auto or an integer >= 1"),
        ("workers: '\u00b2'\n", "workers: '\u00b2' is not auto or an integer >= 1"),  # a digit to str.isdigit
        ("download: 3\n", "download: 3 is not true or false"),
        ("task: CIFAR\n", "task: 'CIFAR' is not one of MNIST, MAMMO"),
        ("time: [1, 2\n", "line 2"),
        ("- just\n- a list\n", "expected a mapping of parameters"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("training:\n  inh: 1\nencoder:\n  module_name: os\n  class_name: system\n", "encoder.module_name: 'os' is not allowed"),
        ("training:\n  inh: 1\nencoder:\n  module_name: bindsnet.encoding\n  class_name: Evil\n", "encoder.class_name: 'Evil'"),
    ],
)
def test_bad_files_name_file_key_and_value(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_unbounded_aliases_are_refused(tmp_path):
    # a "billion laughs" document: each level repeats the one before ten times
    lines = ["l0: &l0 [lol]"]
    for level in range(1, 12):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="aliases"):
        cfg.load(path)


@pytest.mark.parametrize("override, message", [
    ("n_neurons", "expected KEY=VALUE"),
    ("colour=red", "unknown key 'colour'"),
    ("time=-5", "time: -5 is out of range"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        cfg.apply_overrides(cfg.Config(), [override])


def test_cli_bad_file_is_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, "reduction: median\n")
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "reduction: 'median'" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in result.output


def test_cli_missing_file_exit_2(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such parameter file" in result.stderr


def test_n_classes_must_match_the_data(tmp_path):
    path = write(tmp_path, f"n_classes: 3\nn_train: 20\nn_test: 10\nlog_dir: {tmp_path}/logs\n")
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert "n_classes: 3 does not match the 10 classes of the data" in result.stderr
    assert "--set n_classes=10" in result.stderr


def test_learning_rates_follow_the_step_schedule():
    config = cfg.Config(nu_pre=2e-4, nu_post=4e-2, nu_decay=0.5)
    assert [config.learning_rates(epoch) for epoch in range(3)] == [(2e-4, 4e-2), (1e-4, 2e-2), (5e-5, 1e-2)]
    assert cfg.Config().learning_rates(7) == (cfg.Config().nu_pre, cfg.Config().nu_post)


@pytest.mark.parametrize("text, words", [
    ("task: MNIST\nn_neurons: 25\ntime: 50\nepochs: 1\ntask: MAMMO\n", ["key 'task' appears twice (lines 1 and 5)"]),
    # the original nested layout: a key repeated inside its training block
    ("time: 100\ntraining:\n  inh: 120\n  n_neurons: 25\n  inh: 400\n", ["key 'inh' appears twice (lines 3 and 5)"]),
    ("encoder:\n  class_name: PoissonEncoder\n  params: {time: 50, time: 100}\ntraining: {}\n",
     ["key 'time' appears twice (line 3, columns 12 and 22)"]),
])
def test_cli_duplicate_key_is_one_line_naming_file_key_and_lines(tmp_path, monkeypatch, text, words):
    monkeypatch.chdir(tmp_path)  # a run that went ahead would write ./logs here
    path = write(tmp_path, text)
    result = runner.invoke(app, ["train", str(path)])
    assert_one_line_error(result, 2, str(path), *words)
    assert list(tmp_path.iterdir()) == [path]


def test_merge_keys_may_still_be_overridden():
    # YAML lets a mapping override what it merges in: that is not a key given twice
    merged = parse_yaml("base: &b {time: 50, inh: 10}\nrun:\n  <<: *b\n  inh: 20\n", "m.yaml")
    assert merged["run"] == {"time": 50, "inh": 20}


def test_duplicate_key_in_a_set_value_is_refused():
    with pytest.raises(ConfigError, match=r"key 'a' appears twice"):
        cfg.apply_overrides(cfg.Config(), ["name={a: 1, a: 2}"])


@pytest.mark.parametrize("text", ["", "\n\n", "# parameters to come\n# task: MNIST\n", "null\n", "~\n", "---\n"],
                         ids=["empty", "blank-lines", "only-comments", "null", "tilde", "empty-document"])
def test_cli_empty_parameter_file_is_refused(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)  # a default run would write ./logs here
    path = write(tmp_path, text)
    result = runner.invoke(app, ["train", str(path)])
    assert_one_line_error(result, 2, str(path), "empty parameter file", "parameters/mnist.yaml")
    assert list(tmp_path.iterdir()) == [path]


def test_an_explicit_empty_mapping_still_means_the_defaults(tmp_path):
    # `{}` is written on purpose, unlike a file that holds nothing
    assert cfg.load(write(tmp_path, "{}\n")) == cfg.Config()
