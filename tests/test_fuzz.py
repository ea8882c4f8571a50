"""Property-based tests of the two readers of untrusted files: parameter files and checkpoints.

Whatever the bytes, the answer is a result or one clear line: ``ConfigError`` (exit 2) for
a parameter file, ``SnnctlError`` (exit 1) for a checkpoint, never a traceback. Inputs are
random, and real files mutated at random (headers, metadata, values, lengths).
"""

from __future__ import annotations

import json
import math
import struct
import threading
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import choices
from snnctl import config as cfg
from snnctl import network as net
from snnctl import original_layout
from snnctl import service
from snnctl.cli import app
from snnctl.errors import ConfigError, SnnctlError
from snnctl.readout.vote import LabelState
from snnctl.yaml_reader import MAX_YAML_BYTES, MAX_YAML_DEPTH

from conftest import tiny_config, write_mnist_idx

FIXTURES = Path(__file__).parent / "fixtures"
# Modest budgets: the whole file runs in well under a minute. No example database, so
# that running the tests leaves nothing behind in the working tree.
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
runner = CliRunner()


def assert_one_line(error: Exception, source: str) -> None:
    """What a user sees: one line that names the file."""
    message = str(error)
    assert message and "\n" not in message, repr(message)
    assert source in message, message


def assert_cli_error(result, exit_code: int) -> None:
    assert result.exit_code == exit_code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a traceback
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    # nothing on stdout; with --json, the error's document
    assert result.stdout == "" or json.loads(result.stdout)["exit_code"] == exit_code, result.stdout


# ---------------------------------------------------------------- parameter files

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
yaml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
flat_documents = st.dictionaries(st.sampled_from(cfg.KEYS) | st.text(max_size=10), yaml_values, max_size=6)
encoder_blocks = st.fixed_dictionaries({}, optional={
    "module_name": st.sampled_from([original_layout.ENCODER_MODULE, "os", "subprocess", "builtins", "bindsnet"]) | st.text(max_size=8),
    "class_name": st.sampled_from(original_layout.ENCODERS + ("system", "Popen", "__import__")) | st.text(max_size=8),
    "params": st.dictionaries(st.sampled_from(["time", "dt", "intensity"]) | st.text(max_size=5), yaml_values, max_size=3),
})
original_documents = st.fixed_dictionaries(
    {"training": st.dictionaries(st.sampled_from(cfg.KEYS), yaml_values, max_size=4)},
    optional={"encoder": encoder_blocks | yaml_values, "time": yaml_values, "dt": yaml_values})
YAML_SYNTAX = "&*!:{}[]-,#|>'\"%@`?\n\t "


def mutate_text(text: str, data: st.DataObject) -> str:
    """A few random insertions, deletions and replacements, biased to YAML syntax."""
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(text)))
        piece = data.draw(st.text(alphabet=YAML_SYNTAX, max_size=3) | st.text(max_size=3))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + piece + text[at + cut:]
    return text


def check_parameter_file(path: Path, overrides: list[str] | None = None) -> cfg.Config | None:
    """``config.load`` returns a valid config that survives a round trip, or one ConfigError line."""
    try:
        config = cfg.load(path, overrides)
    except ConfigError as exc:
        assert_one_line(exc, "--set" if overrides else str(path))
        return None
    for key, value in config.to_dict().items():
        assert not isinstance(value, float) or math.isfinite(value), (key, value)
    again = path.with_name("again.yaml")
    again.write_text(cfg.dump_yaml(config))
    assert cfg.load(again) == config
    return config


@FUZZ
@given(document=flat_documents | original_documents)
def test_random_parameter_documents(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    check_parameter_file(path)


@FUZZ
@given(text=st.text(max_size=300))
@example(text="time: " + "1" * 5000)  # an integer too long for Python to convert
@example(text="time: .nan")
@example(text="dt: -.inf")
@example(text="!!python/object/apply:os.system ['echo owned']")
@example(text="encoder: {module_name: os, class_name: system}")
def test_random_parameter_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_parameter_file(path)


@FUZZ
@given(data=st.data(), original=st.sampled_from(["mnist.yaml", "inbreast.yaml"]))
def test_mutated_parameter_files(tmp_path_factory, data, original):
    path = tmp_path_factory.mktemp("params") / original
    path.write_text(mutate_text((FIXTURES / original).read_text(), data))
    check_parameter_file(path)


@FUZZ
@given(overrides=st.lists(st.text(max_size=30) | st.builds("{}={}".format, st.sampled_from(cfg.KEYS), st.text(max_size=20)),
                          min_size=1, max_size=3))
def test_random_overrides(tmp_path_factory, overrides):
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text("n_neurons: 25\n")
    check_parameter_file(path, overrides)


class Reached(SnnctlError):
    """Raised by the stand-in for training: the command accepted its parameters."""

    exit_code = 3


@FUZZ
@given(data=st.data(), source=st.sampled_from(["random", "mutated", "document"]))
def test_train_command_on_random_parameter_files(tmp_path_factory, data, source):
    """``snnctl train FILE``: exit 2 and the loader's one line, or on to training."""
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    if source == "random":
        path.write_text(data.draw(st.text(max_size=200)))
    elif source == "mutated":
        path.write_text(mutate_text((FIXTURES / "mnist.yaml").read_text(), data))
    else:
        path.write_text(yaml.safe_dump(data.draw(flat_documents | original_documents)))
    try:
        expected = cfg.load(path)
    except ConfigError as exc:
        expected = exc
    with mock.patch.object(service, "train", side_effect=Reached("training reached")) as train:
        result = runner.invoke(app, ["train", str(path)])
    if isinstance(expected, ConfigError):
        assert_cli_error(result, 2)
        assert result.stderr == f"error: {expected}\n"
        train.assert_not_called()
    else:
        assert_cli_error(result, 3)
        assert train.call_args.args[0] == expected


def test_yaml_aliases_beyond_the_limit_are_refused(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(levels) + "\n")
    with pytest.raises(ConfigError, match="aliases") as error:
        cfg.load(path)
    assert_one_line(error.value, str(path))


def test_yaml_aliases_within_the_limit_cannot_expand_an_error_message(tmp_path):
    """80 aliases can name a list of 10**9 items: refusing it must not print them all."""
    levels = ["&a0 [" + ", ".join(["x"] * 10) + "]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("name: [" + ", ".join(levels) + "]\n")
    with pytest.raises(ConfigError, match="name") as error:
        cfg.load(path)
    assert_one_line(error.value, str(path))
    assert len(str(error.value)) < 500


@pytest.mark.parametrize("text", [
    "time: " + "[" * 3000 + "]" * 3000,  # deeper than PyYAML's recursion
    "time: " + "{a: " * 200_000,  # PyYAML's scanner would take hours over this
    "".join(" " * level + f"k{level}:\n" for level in range(1000)),  # block mappings
], ids=["flow-sequences", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_refused_at_once(tmp_path, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"nested more than {MAX_YAML_DEPTH} levels deep") as error:
        cfg.load(path)
    assert_one_line(error.value, str(path))


def test_python_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "owned"
    path = tmp_path / "params.yaml"
    path.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        cfg.load(path)
    assert_one_line(error.value, str(path))
    assert not marker.exists()


@pytest.mark.parametrize("block, key", [
    ({"module_name": "os", "class_name": "system"}, "encoder.module_name"),
    ({"module_name": "bindsnet.encoding", "class_name": "__import__"}, "encoder.class_name"),
    ({"class_name": "PoissonEncoder", "params": {"time": 50, "callback": "os.system"}}, "encoder.params.callback"),
])
def test_the_encoder_block_cannot_name_a_module(tmp_path, block, key):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"training": {"n_neurons": 25}, "encoder": block}))
    with mock.patch("importlib.import_module") as import_module, pytest.raises(ConfigError, match=key) as error:
        cfg.load(path)
    import_module.assert_not_called()
    assert_one_line(error.value, str(path))


def test_oversized_parameter_file_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="larger than") as error:
        cfg.load(path)
    assert_one_line(error.value, str(path))


# ---------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    """A valid checkpoint with every kind of tensor (network, labels, training window), kept
    small so that random mutations hit its header and values often."""
    config = cfg.Config().replace(n_neurons=5, input_size=4, batch_size=2, update_interval=8, n_classes=3)
    generator = torch.Generator().manual_seed(0)
    rates = torch.rand(5, 3, generator=generator)
    state = LabelState(rates.argmax(1), rates / rates.sum(1, keepdim=True), rates)
    window = (torch.randint(0, 9, (3, 5), dtype=torch.int32, generator=generator), torch.tensor([0, 2, 1]))
    checkpoint = ckpt.Checkpoint(config, net.initial_tensors(config), ["a", "b", "c"], state,
                                 ckpt.Progress(samples_seen=12, epoch=1, position=4), window, {"data": "test"})
    path = tmp_path_factory.mktemp("small") / "small.safetensors"
    ckpt.save(checkpoint, path)
    loaded = ckpt.load(path)  # the unmutated file is valid
    assert loaded.progress.samples_seen == 12 and loaded.window is not None and loaded.labels is not None
    return path


@pytest.mark.parametrize("dropped, names", [(ckpt.LABEL_KEYS[1], ckpt.LABEL_KEYS), (ckpt.WINDOW_KEYS[1], ckpt.WINDOW_KEYS)])
def test_part_of_a_tensor_group_is_refused(small_checkpoint, tmp_path, dropped, names):
    """A label state and the training window come whole or not at all: a file that holds
    part of one is refused in one line that names the missing tensor and the whole group."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(small_checkpoint), framework="np") as reader:
        metadata = reader.metadata()
        arrays = {name: reader.get_tensor(name) for name in reader.keys() if name != dropped}
    cut = tmp_path / "cut.safetensors"
    save_file(arrays, str(cut), metadata=metadata)
    with pytest.raises(SnnctlError) as error:
        ckpt.read(cut)
    assert_one_line(error.value, str(cut))
    assert f"{dropped!r} is missing" in str(error.value) and ", ".join(names) in str(error.value)


def split_safetensors(blob: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + length]), blob[8 + length:]


def join_safetensors(header: dict, payload: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + payload


def check_checkpoint_file(path: Path) -> ckpt.Checkpoint | None:
    """``checkpoint.load`` gives a checkpoint that keeps its promises, or one SnnctlError line."""
    try:
        checkpoint = ckpt.load(path)
    except SnnctlError as exc:
        assert type(exc) is SnnctlError, type(exc)  # a bad file is exit 1, not a usage error
        assert_one_line(exc, str(path))
        return None
    config = checkpoint.config
    for name, tensor in checkpoint.tensors.named().items():
        assert tuple(tensor.shape) == config.tensor_shapes()[name]
        assert torch.isfinite(tensor).all(), name
    progress = checkpoint.progress
    assert min(progress.samples_seen, progress.epoch, progress.position) >= 0
    assert isinstance(checkpoint.info, dict) and isinstance(checkpoint.versions, dict)
    if checkpoint.labels is not None:
        assert checkpoint.labels.assignments.max() < len(checkpoint.class_names)
        assert torch.isfinite(checkpoint.labels.proportions).all() and torch.isfinite(checkpoint.labels.rates).all()
    if checkpoint.window is not None:
        counts, labels = checkpoint.window
        assert counts.shape == (len(labels), config.n_neurons)
        assert len(labels) == 0 or (labels.min() >= 0 and labels.max() < config.n_classes)
    return checkpoint


def check_inspect(path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    if result.exit_code == 0:
        json.loads(result.stdout)
    else:
        assert_cli_error(result, 1)
        assert str(path) in result.stderr


@FUZZ
@given(blob=st.binary(max_size=400))
@example(blob=b"")
@example(blob=struct.pack("<Q", 2**60) + b"{}")  # a header length far beyond the file
@example(blob=struct.pack("<Q", 2) + b"{}")  # an empty safetensors file
def test_random_bytes_are_not_a_checkpoint(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("ckpt") / "random.safetensors"
    path.write_bytes(blob)
    assert check_checkpoint_file(path) is None
    check_inspect(path)


@FUZZ
@given(data=st.data())
def test_checkpoints_with_bytes_mutated_or_cut(tmp_path_factory, small_checkpoint, data):
    blob = bytearray(small_checkpoint.read_bytes())
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(1, len(blob) - 1)):]
    for _ in range(data.draw(st.integers(1, 8))):
        # mostly the header (the first few hundred bytes), sometimes the values
        at = data.draw(st.integers(0, min(len(blob), 1200) - 1) | st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("ckpt") / "mutated.safetensors"
    path.write_bytes(bytes(blob))
    check_checkpoint_file(path)
    check_inspect(path)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)
shapes = st.lists(st.integers(0, 2**40) | st.integers(0, 30), max_size=3)
metadata_texts = st.text(max_size=12) | st.integers(-10, 10**20).map(str) | json_values.map(json.dumps)


@st.composite
def mutated_headers(draw, blob: bytes) -> bytes:
    """The real header with a few entries changed: shapes, dtypes, offsets, metadata, config."""
    header, payload = split_safetensors(blob)
    metadata = header["__metadata__"]
    stored = json.loads(metadata["config"])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["shape", "dtype", "offsets", "drop", "metadata", "config", "extra"]))
        name = draw(st.sampled_from(sorted(name for name in header if name != "__metadata__")))
        if kind == "shape":
            header[name]["shape"] = draw(shapes)
        elif kind == "dtype":
            header[name]["dtype"] = draw(st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "I32", "U8", "BOOL", "X"]))
        elif kind == "offsets":
            header[name]["data_offsets"] = draw(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, len(payload)),
                                                         min_size=2, max_size=2))
        elif kind == "drop":
            header.pop(name, None)
        elif kind == "metadata":
            key = draw(st.sampled_from(sorted(metadata)) | st.text(max_size=5))
            if draw(st.booleans()):
                metadata[key] = draw(metadata_texts)
            else:
                metadata.pop(key, None)
        elif kind == "config":
            stored[draw(st.sampled_from(sorted(stored)) | st.text(max_size=5))] = draw(json_values)
            metadata["config"] = json.dumps(stored)
        else:
            header[draw(st.text(min_size=1, max_size=8))] = {"dtype": "F32", "shape": draw(shapes),
                                                             "data_offsets": [0, len(payload)]}
    return join_safetensors(header, payload)


@FUZZ
@given(data=st.data())
def test_checkpoints_with_header_entries_changed(tmp_path_factory, small_checkpoint, data):
    path = tmp_path_factory.mktemp("ckpt") / "header.safetensors"
    path.write_bytes(data.draw(mutated_headers(small_checkpoint.read_bytes())))
    check_checkpoint_file(path)
    check_inspect(path)


@FUZZ
@given(data=st.data(), value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_values_are_refused(tmp_path_factory, small_checkpoint, data, value):
    """NaN or Inf anywhere in a float tensor (weights, theta, label state) is refused."""
    header, payload = split_safetensors(small_checkpoint.read_bytes())
    floats = sorted(name for name in header if name != "__metadata__" and header[name]["dtype"] == "F32")
    name = data.draw(st.sampled_from(floats))
    start, stop = header[name]["data_offsets"]
    at = start + 4 * data.draw(st.integers(0, (stop - start) // 4 - 1))
    payload = payload[:at] + np.float32(value).tobytes() + payload[at + 4:]
    path = tmp_path_factory.mktemp("ckpt") / "nan.safetensors"
    path.write_bytes(join_safetensors(header, payload))
    with pytest.raises(SnnctlError, match=f"{name}.*NaN or infinite") as error:
        ckpt.load(path)
    assert_one_line(error.value, str(path))


def test_format_version_from_the_future_is_refused(tmp_path, small_checkpoint):
    header, payload = split_safetensors(small_checkpoint.read_bytes())
    header["__metadata__"]["format_version"] = str(ckpt.FORMAT_VERSION + 1)
    path = tmp_path / "future.safetensors"
    path.write_bytes(join_safetensors(header, payload))
    result = runner.invoke(app, ["inspect", str(path)])
    assert_cli_error(result, 1)
    assert f"format version {ckpt.FORMAT_VERSION + 1} is newer" in result.stderr


def test_a_pickle_is_not_read(tmp_path):
    """A torch.save file (a pickle that could run code) is refused, not unpickled."""
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with mock.patch("pickle.loads") as loads, mock.patch("pickle.load") as load:
        result = runner.invoke(app, ["inspect", str(path)])
    loads.assert_not_called()
    load.assert_not_called()
    assert_cli_error(result, 1)
    assert "not a readable safetensors file" in result.stderr


# ---------------------------------------------------------------- resume and run directories


@pytest.fixture(scope="module")
def resumable_run(tmp_path_factory) -> Path:
    """A run directory with a checkpoint in progress, on a data folder of its own."""
    root = tmp_path_factory.mktemp("resumable")
    write_mnist_idx(root / "data", n_train=20, n_test=8)
    config = tiny_config(root, n_neurons=5, n_train=20, n_test=8, update_interval=8, batch_size=2)
    run_dir = root / "run"
    run_dir.mkdir()
    window = (torch.zeros((2, 5), dtype=torch.int32), torch.tensor([0, 1]))
    ckpt.save(ckpt.Checkpoint(config, net.initial_tensors(config), [str(d) for d in range(10)], None,
                              ckpt.Progress(samples_seen=4, epoch=0, position=4), window), run_dir / ckpt.CHECKPOINT_NAME)
    (run_dir / service.STATUS_NAME).write_text(json.dumps({"state": "interrupted", "samples_seen": 4}))
    return run_dir


override_values = st.one_of(st.integers(-3, 3000), st.floats(-2, 1e6, allow_nan=False), st.booleans(),
                            st.sampled_from(["null", "cpu", "cuda", "fast", "bindsnet", "MAMMO", "diehl-cook-2015-v2",
                                             "BernoulliEncoder", "x/y", "..", "1.0e+29", "1e400"]),
                            st.text(max_size=8))


@settings(FUZZ, max_examples=25)
@given(overrides=st.lists(st.tuples(st.sampled_from(cfg.KEYS), override_values), min_size=1, max_size=3))
@example(overrides=[("device", "cuda")])  # on a machine without CUDA: refused before the run is touched
def test_resume_with_random_overrides_runs_only_resumable_changes(resumable_run, overrides):
    """``train --resume CKPT --set ...``: a change to a key that is not resumable is one line
    (exit 2) and leaves the run's files as they were; training starts only when every
    change is one that :data:`snnctl.config.RESUMABLE_KEYS` allows."""
    checkpoint = resumable_run / ckpt.CHECKPOINT_NAME
    before = {path.name: path.read_bytes() for path in resumable_run.iterdir()}
    stored = ckpt.load(checkpoint).config
    args = [f"{key}={json.dumps(value) if not isinstance(value, str) else value}" for key, value in overrides]
    ran = []

    def run_instead(start, *rest):
        ran.append(start.config)
        raise SnnctlError("stopped before training")

    with mock.patch("snnctl.service.train._run", run_instead):
        result = runner.invoke(app, ["train", "--resume", str(checkpoint), *[a for x in args for a in ("--set", x)]])
    assert result.exit_code in (1, 2), (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    if ran:
        changed = {key for key in cfg.KEYS if getattr(ran[0], key) != getattr(stored, key)}
        assert changed <= set(choices.RESUMABLE_KEYS), changed
        (resumable_run / service.STATUS_NAME).write_bytes(before[service.STATUS_NAME])  # marked failed by the stop
    else:
        assert_cli_error(result, 2)
    assert {path.name: path.read_bytes() for path in resumable_run.iterdir()} == before


@settings(FUZZ, max_examples=8)
@given(delay=st.floats(0, 0.05), force=st.tuples(st.booleans(), st.booleans()), by_name=st.booleans())
def test_two_concurrent_runs_into_one_directory(tmp_path_factory, delay, force, by_name):
    """Two trainings started together into one directory (``--out`` or the same ``name``):
    one is refused with one line naming the directory, or both ran one after the other
    (only with --force); the directory holds the network of the run that finished last,
    and no lock."""
    root = tmp_path_factory.mktemp("concurrent")
    write_mnist_idx(root / "data", n_train=12, n_test=4)
    configs = [tiny_config(root, n_neurons=5, n_train=12, n_test=4, time=10, name="same", seed=seed)
               for seed in (1, 2)]
    run_dir = root / "logs" / "MNIST" / "same"
    outcomes: dict[int, tuple[str, object, float]] = {}
    together = threading.Barrier(2)

    def run(index: int) -> None:
        together.wait()
        if index:
            time.sleep(delay)
        try:
            result = service.train(configs[index], out=None if by_name else run_dir, force=force[index])
            outcomes[index] = ("ok", result, time.monotonic())
        except ConfigError as error:
            outcomes[index] = ("refused", error, time.monotonic())

    threads = [threading.Thread(target=run, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    succeeded = [index for index in (0, 1) if outcomes[index][0] == "ok"]
    assert succeeded, outcomes
    for index in (0, 1):
        if outcomes[index][0] == "refused":
            message = str(outcomes[index][1])
            assert "\n" not in message and str(run_dir) in message
            assert "in use" in message or "not an empty directory" in message
    if len(succeeded) == 2:
        assert force[1] or force[0]
    last = max(succeeded, key=lambda index: outcomes[index][2])
    assert ckpt.load(run_dir / ckpt.CHECKPOINT_NAME).config.seed == configs[last].seed
    assert json.loads((run_dir / service.STATUS_NAME).read_text())["state"] == "finished"
    assert not (run_dir / ".snnctl.lock").exists()
