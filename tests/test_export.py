"""snnctl export: every format read back and compared with the checkpoint, number for number;
the BindsNET network and the NIR graph run on the same input spikes as snnctl, spike for spike.

Both models are covered: the trained two-layer network (BindsNET's synchronous mode) and the
same learned layer as the original project ran it, DiehlAndCook2015v2 in one-step mode.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import data, service
from snnctl import engine as engines
from snnctl import network as net
from snnctl.cli import app

from conftest import assert_one_line_error
from snnctl.errors import ConfigError

runner = CliRunner()
N_IMAGES = 4


@pytest.fixture(scope="module")
def v2_checkpoint(trained_run, tmp_path_factory) -> Path:
    """The trained layer in the original project's setting: recurrent inhibition, one-step mode."""
    stored = ckpt.load(trained_run.checkpoint)
    config = stored.config.replace(model="diehl-cook-2015-v2", one_step=True)
    tensors = net.NetworkTensors(stored.tensors.weights, stored.tensors.theta,
                                 {"recurrent": net.off_diagonal(config.n_neurons, -config.inh)})
    path = tmp_path_factory.mktemp("v2") / "v2.safetensors"
    ckpt.save(ckpt.Checkpoint(config, tensors, stored.class_names, stored.labels, stored.progress), path)
    return path


@pytest.fixture(params=["diehl-cook-2015", "diehl-cook-2015-v2"])
def source(request, trained_run, v2_checkpoint) -> Path:
    return Path(trained_run.checkpoint) if request.param == "diehl-cook-2015" else v2_checkpoint


def checkpoint_tensors(stored: ckpt.Checkpoint) -> dict[str, torch.Tensor]:
    """What a full export must hold: the network and the label state."""
    return {**stored.tensors.named(), **stored.labels.named()}


def input_spikes(config) -> torch.Tensor:
    """BindsNET Poisson spikes [steps, batch, n_inputs] of a few held-out images."""
    splits = data.load_splits(config, lambda message: None)
    return engines.encode(config, splits.test.images[:N_IMAGES] * config.intensity, seed=7)


def snnctl_spikes(stored: ckpt.Checkpoint, spikes: torch.Tensor) -> torch.Tensor:
    """The excitatory spikes [steps, batch, n] snnctl's engine gives, learning off."""
    engine = engines.make_engine(stored.config, stored.tensors.clone())
    return engine.present_spikes(spikes, learn=False, record=True).spikes


# ---------------------------------------------------------------- a reference NIR simulator


def _lif_step(node, state: dict[str, np.ndarray], current: np.ndarray, dt: float) -> np.ndarray:
    """NIR LIF ``tau dv/dt = (v_leak - v) + r I`` over one step of ``dt`` ms: the leak
    integrated exactly, each input a unit-area spike (a jump of ``r w / tau``), then
    ``v > v_threshold`` fires and resets; for ``refractory_period`` ms (node metadata)
    after a spike input is ignored."""
    v, refractory = state["v"], state["refractory"]
    decay = np.exp(-dt / node.tau).astype(np.float32)
    v -= node.v_leak
    v *= decay
    v += node.v_leak
    v += (refractory <= 0) * (node.r / node.tau) * current
    refractory -= dt
    fired = v > node.v_threshold
    v[fired] = np.broadcast_to(node.v_reset, v.shape)[fired]
    refractory[fired] = float(node.metadata["refractory_period"])
    return fired.astype(np.float32)


def _evaluation_order(graph) -> list[str]:
    """Nodes in dependency order; a Delay's output is known at the start of a step, so
    edges out of Delay nodes do not constrain the order (and break the cycles)."""
    import nir

    pending = {name for name, node in graph.nodes.items() if not isinstance(node, nir.Delay)}
    needs = {name: {a for a, b in graph.edges if b == name and a in pending} for name in pending}
    order = []
    while pending:
        ready = sorted(name for name in pending if not needs[name] & pending)
        assert ready, f"cycle without a Delay among {sorted(pending)}"
        order += ready
        pending -= set(ready)
    return order


def simulate_nir(graph, spikes: np.ndarray, dt: float) -> np.ndarray:
    """Run a graph of Input, Linear, Delay, LIF and Output nodes with time step ``dt`` ms on
    input spikes [steps, batch, n_inputs]; the output spikes [steps, batch, n]. Edges into a
    node add up; a Delay of d ms is a buffer of d / dt steps."""
    import nir

    steps, batch, _ = spikes.shape
    sources = {name: [a for a, b in graph.edges if b == name] for name in graph.nodes}
    buffers, states = {}, {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Delay):
            length = round(float(node.delay[0]) / dt)
            buffers[name] = deque(np.zeros((batch, len(node.delay)), np.float32) for _ in range(length))
        elif isinstance(node, nir.LIF):
            states[name] = {"v": np.tile(node.v_leak, (batch, 1)), "refractory": np.zeros((batch, len(node.tau)), np.float32)}
    order = _evaluation_order(graph)
    recorded = []
    for t in range(steps):
        value = {name: buffer[0] for name, buffer in buffers.items()}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                value[name] = spikes[t]
                continue
            total = sum(value[s] for s in sources[name])
            if isinstance(node, nir.Linear):
                value[name] = total @ node.weight.T
            elif isinstance(node, nir.LIF):
                value[name] = _lif_step(node, states[name], total, dt)
            elif isinstance(node, nir.Output):
                value[name] = total
            else:
                raise NotImplementedError(type(node).__name__)
        for name, buffer in buffers.items():
            buffer.append(sum(value[s] for s in sources[name]))
            buffer.popleft()
        recorded.append(value["output"])
    return np.stack(recorded).astype(bool)


# ---------------------------------------------------------------- the formats


def test_npz_export_holds_every_tensor_and_the_metadata(source, tmp_path):
    stored = ckpt.load(source)
    path = tmp_path / "network.npz"
    result = service.export(source, "npz", path)
    expected = checkpoint_tensors(stored)
    assert result.output == str(path) and result.bytes == path.stat().st_size
    assert result.tensors == sorted(expected) and result.not_carried == []
    with np.load(path) as archive:  # allow_pickle stays False: no pickle inside
        assert set(archive.files) == set(expected) | {"metadata"}
        for name, value in expected.items():
            assert archive[name].dtype == value.numpy().dtype, name
            np.testing.assert_array_equal(archive[name], value.numpy(), err_msg=name)
        metadata = json.loads(str(archive["metadata"]))
    assert metadata["config"] == stored.config.to_dict()
    assert metadata["class_names"] == stored.class_names
    assert metadata["progress"]["samples_seen"] == stored.progress.samples_seen
    assert metadata["info"] == stored.info


def test_torch_export_is_a_tensors_only_state_dict(source, tmp_path):
    stored = ckpt.load(source)
    path = tmp_path / "state.pt"
    service.export(source, "torch", path)
    state = torch.load(path, weights_only=True)
    expected = checkpoint_tensors(stored)
    assert set(state) == set(expected)
    for name, value in expected.items():
        assert state[name].dtype == value.dtype and torch.equal(state[name], value), name


def test_bindsnet_export_loads_and_runs_spike_for_spike_like_snnctl(source, tmp_path):
    from bindsnet.network import load
    from bindsnet.network.monitors import Monitor

    stored = ckpt.load(source)
    config = stored.config
    path = tmp_path / "network.pt"
    result = service.export(source, "bindsnet", path)
    assert "label state" in result.not_carried[0]
    network = load(str(path))  # a pickle, written by this test just above
    assert not network.learning
    loaded = net.tensors_from_bindsnet(network, config).named()
    for name, value in stored.tensors.named().items():
        assert torch.equal(loaded[name], value), name

    spikes = input_spikes(config)
    exc = network.layers[net.EXC_LAYER[config.model]]
    monitor = Monitor(exc, state_vars=["s"], time=config.steps)
    network.add_monitor(monitor, name="exc")
    network.run(inputs={net.INPUT_LAYER: spikes.clone()}, time=config.time, one_step=config.one_step)
    expected = snnctl_spikes(stored, spikes)
    assert expected.sum() > 0  # a comparison of silences would prove nothing
    assert torch.equal(monitor.get("s").bool().cpu(), expected)
    # learning stayed off: the thresholds did not move, and the weights only by the float
    # rounding of the normalization that Network.run applies after every run
    after = net.tensors_from_bindsnet(network, config)
    assert torch.equal(after.theta, stored.tensors.theta)
    assert torch.allclose(after.weights, stored.tensors.weights, rtol=1e-5, atol=1e-6)


def test_nir_export_maps_every_parameter_with_its_units(source, tmp_path):
    import nir

    stored = ckpt.load(source)
    config = stored.config
    path = tmp_path / "network.nir"
    result = service.export(source, "nir", path)
    assert any("STDP" in note for note in result.not_carried)
    assert any("theta" in note for note in result.not_carried)
    graph = nir.read(path)
    assert graph.metadata["time_unit"] == "ms" and graph.metadata["voltage_unit"] == "mV"
    assert float(graph.metadata["dt"]) == config.dt
    np.testing.assert_array_equal(graph.nodes["input_to_exc"].weight, stored.tensors.weights.t().numpy())
    for name, value in stored.tensors.lateral.items():
        assert isinstance(graph.nodes[name], nir.Linear)
        np.testing.assert_array_equal(graph.nodes[name].weight, value.t().numpy(), err_msg=name)

    exc = graph.nodes["exc"]
    theta = stored.tensors.theta.numpy()
    np.testing.assert_array_equal(exc.v_threshold, (np.float32(config.exc_thresh) + theta).astype(np.float32))
    np.testing.assert_array_equal(exc.metadata["theta"], theta)
    assert float(exc.metadata["theta_plus"]) == config.theta_plus
    # BindsNET's DiehlAndCookNodes of the Diehl & Cook models, in ms and mV
    assert np.all(exc.tau == 100.0) and np.all(exc.r == exc.tau)
    assert np.all(exc.v_leak == -65.0) and np.all(exc.v_reset == -60.0)
    assert float(exc.metadata["refractory_period"]) == 5.0
    delays = {name for name, node in graph.nodes.items() if isinstance(node, nir.Delay)}
    if config.model == "diehl-cook-2015":
        inh = graph.nodes["inh"]
        assert np.all(inh.tau == 10.0) and np.all(inh.r == inh.tau) and np.all(inh.v_leak == -60.0)
        assert np.all(inh.v_reset == -45.0) and np.all(inh.v_threshold == -40.0)
        assert float(inh.metadata["refractory_period"]) == 2.0
        # synchronous mode: every connection reads the previous step
        assert delays == {"input_to_exc_delay", "exc_to_inh_delay", "inh_to_exc_delay"}
    else:
        assert "inh" not in graph.nodes
        assert delays == {"recurrent_delay"}  # one-step mode: only the way back waits a step
    for name in delays:
        assert np.all(graph.nodes[name].delay == config.dt)
    np.testing.assert_array_equal(graph.nodes["output"].metadata["assignments"], stored.labels.assignments.numpy())
    assert json.loads(graph.nodes["output"].metadata["class_names"]) == stored.class_names


def test_nir_graph_simulates_spike_for_spike_like_snnctl(source, tmp_path):
    import nir

    stored = ckpt.load(source)
    path = tmp_path / "network.nir"
    service.export(source, "nir", path)
    spikes = input_spikes(stored.config)
    got = simulate_nir(nir.read(path), spikes.numpy().astype(np.float32), stored.config.dt)
    expected = snnctl_spikes(stored, spikes).numpy()
    assert expected.sum() > 0
    np.testing.assert_array_equal(got, expected)


def test_stdp_reduction_max_network_exports_to_bindsnet(trained_run, tmp_path):
    """BindsNET pickles the whole network, its STDP reduction included."""
    from bindsnet.network import load

    stored = ckpt.load(trained_run.checkpoint)
    stored.config = stored.config.replace(stdp_reduction="max")
    path = ckpt.save(stored, tmp_path / "max.safetensors")
    service.export(path, "bindsnet", tmp_path / "network.pt")
    assert torch.equal(net.tensors_from_bindsnet(load(str(tmp_path / "network.pt")), stored.config).weights,
                       stored.tensors.weights)


# ---------------------------------------------------------------- command line


def test_export_command_writes_the_file_and_reports_json(trained_run, tmp_path):
    path = tmp_path / "network.npz"
    result = runner.invoke(app, ["export", trained_run.checkpoint, "--format", "npz", "-o", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format"] == "npz" and document["output"] == str(path)
    assert document["bytes"] == path.stat().st_size
    assert "input_to_exc.weight" in document["tensors"]


def test_export_command_prints_a_table_of_what_it_wrote(trained_run, tmp_path):
    result = runner.invoke(app, ["export", trained_run.checkpoint, "-f", "nir", "-o", str(tmp_path / "n.nir")])
    assert result.exit_code == 0, result.output
    assert "nir" in result.stdout and "not carried" in result.stdout and "STDP" in result.stdout


def test_unknown_format_is_one_line_naming_the_formats(trained_run, tmp_path):
    result = runner.invoke(app, ["export", trained_run.checkpoint, "--format", "onnx", "-o", str(tmp_path / "x")])
    assert_one_line_error(result, 2, "'onnx'", "npz, torch, bindsnet, nir")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError):
        service.export(Path(trained_run.checkpoint), "onnx", tmp_path / "x")


def test_existing_output_is_refused_without_force(trained_run, tmp_path):
    path = tmp_path / "network.npz"
    path.write_bytes(b"keep me")
    result = runner.invoke(app, ["export", trained_run.checkpoint, "--format", "npz", "-o", str(path)])
    assert_one_line_error(result, 2, str(path), "--force")
    assert path.read_bytes() == b"keep me"
    again = runner.invoke(app, ["export", trained_run.checkpoint, "--format", "npz", "-o", str(path), "--force"])
    assert again.exit_code == 0, again.output
    with np.load(path) as archive:
        np.testing.assert_array_equal(archive["exc.theta"], ckpt.load(trained_run.checkpoint).tensors.theta.numpy())


def test_missing_output_directory_and_directory_as_output(trained_run, tmp_path):
    missing = tmp_path / "no" / "such" / "network.npz"
    assert_one_line_error(runner.invoke(app, ["export", trained_run.checkpoint, "-f", "npz", "-o", str(missing)]),
                    2, "no such directory")
    assert_one_line_error(runner.invoke(app, ["export", trained_run.checkpoint, "-f", "npz", "-o", str(tmp_path)]),
                    2, "directory")


def test_bad_checkpoint_is_one_line_exit_1(tmp_path):
    assert_one_line_error(runner.invoke(app, ["export", str(tmp_path / "none.safetensors"), "-f", "npz",
                                        "-o", str(tmp_path / "x.npz")]), 1, "no such checkpoint")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    assert_one_line_error(runner.invoke(app, ["export", str(junk), "-f", "torch", "-o", str(tmp_path / "x.pt")]), 1,
                    str(junk))
    assert not (tmp_path / "x.pt").exists()


def test_export_help_shows_examples():
    result = runner.invoke(app, ["export", "--help"])
    assert result.exit_code == 0
    assert "snnctl export CKPT --format npz" in result.stdout
