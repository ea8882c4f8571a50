"""snnctl export: every format read back and compared with the checkpoint, number for number;
the BindsNET network and the NIR graph run on the same input spikes as snnctl, spike for spike.

Both models are covered: the trained two-layer network (BindsNET's synchronous mode) and the
same learned layer as the original project ran it, DiehlAndCook2015v2 in one-step mode.
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnctl import checkpoint as ckpt
from snnctl import data, export, service
from snnctl import engine as engines
from snnctl import network as net
from snnctl.cli import app

from conftest import assert_one_line_error, bench_module
from snnctl.errors import ConfigError

runner = CliRunner()
N_IMAGES = 4
N_CLASSIFIED = 100  # images each NIR consumer classifies


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
    """What a full export must hold: the network, the label state and the linear readout (if any)."""
    linear = {name: torch.from_numpy(array) for name, array in stored.readout.to_tensors().items()} if stored.readout else {}
    return {**stored.tensors.named(), **stored.labels.named(), **linear}


def input_spikes(config) -> torch.Tensor:
    """BindsNET Poisson spikes [steps, batch, n_inputs] of a few held-out images."""
    images = data.load_splits(config, lambda message: None).test.images[:N_IMAGES]
    return engines.encode(config, images.float() * engines.rate_per_unit(config, images), seed=7)


def snnctl_spikes(stored: ckpt.Checkpoint, spikes: torch.Tensor) -> torch.Tensor:
    """The excitatory spikes [steps, batch, n] snnctl's engine gives, learning off."""
    engine = engines.make_engine(stored.config, stored.tensors.clone())
    return engine.present_spikes(spikes, learn=False, record=True).spikes


# ---------------------------------------------------------------- a reference NIR simulator


def _lif_step(node, state: dict[str, np.ndarray], current: np.ndarray, step: float, refractory: bool) -> np.ndarray:
    """NIR LIF ``tau dv/dt = (v_leak - v) + r I`` over one step as NIR consumers take it
    (Norse's LIFBoxCell, snnTorch's Leaky): ``v += step / tau (v_leak - v + r I)`` with
    spikes of value 1, then ``v > v_threshold`` fires and resets. With ``refractory``,
    input is ignored for ``refractory_period`` (node metadata) after a spike."""
    v, remaining = state["v"], state["refractory"]
    live = remaining <= 0 if refractory else True
    v += (step / node.tau) * (node.v_leak - v)
    v += live * (step / node.tau) * node.r * current
    remaining -= step
    fired = v > node.v_threshold
    v[fired] = np.broadcast_to(node.v_reset, v.shape)[fired]
    remaining[fired] = float(node.metadata["refractory_period"])
    return fired.astype(np.float32)


def _run_order(graph) -> list[str]:
    """nirtorch's order: depth first from the input along the edges in their order; a
    node reads what a later node (or a Delay) gave in the previous step."""
    import nir

    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            order.append(name)
            for source, target in graph.edges:
                if source == name:
                    visit(target)
    visit("input")
    return [name for name in order if not isinstance(graph.nodes[name], nir.Delay)]


def simulate_nir(graph, spikes: np.ndarray, refractory: bool = True) -> np.ndarray:
    """Run a graph of Input, Linear, Delay, LIF and Output nodes, one step of the graph's
    ``dt`` (metadata) at a time, on input spikes [steps, batch, n_inputs]; the output
    spikes [steps, batch, n]. Edges into a node add up; a Delay of d is d / dt steps."""
    import nir

    steps, batch, _ = spikes.shape
    step = float(graph.metadata["dt"])
    sources = {name: [a for a, b in graph.edges if b == name] for name in graph.nodes}
    buffers, states = {}, {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Delay):
            length = round(float(node.delay[0]) / step)
            buffers[name] = deque(np.zeros((batch, len(node.delay)), np.float32) for _ in range(length))
        elif isinstance(node, nir.LIF):
            states[name] = {"v": np.tile(node.v_leak, (batch, 1)), "refractory": np.zeros((batch, len(node.tau)), np.float32)}
    order = _run_order(graph)
    previous: dict[str, np.ndarray] = {}
    recorded = []
    for t in range(steps):
        value = {name: buffer[0] for name, buffer in buffers.items()}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                value[name] = spikes[t]
                continue
            total = sum(value[s] if s in value else previous.get(s, 0) for s in sources[name])
            if isinstance(node, nir.Linear):
                value[name] = total @ node.weight.T
            elif isinstance(node, nir.LIF):
                value[name] = _lif_step(node, states[name], total, step, refractory)
            elif isinstance(node, nir.Output):
                value[name] = total
            else:
                raise NotImplementedError(type(node).__name__)
        for name, buffer in buffers.items():
            buffer.append(sum(value[s] for s in sources[name]))
            buffer.popleft()
        previous = value
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


def test_bindsnet_export_names_the_slowing_potentiation_it_cannot_carry(source):
    stored = ckpt.load(source)
    assert not any("nu_post_theta" in note for note in export.to_bindsnet(stored).notes)
    slowing = dataclasses.replace(stored, config=stored.config.replace(nu_post_theta=20.0))
    assert any("nu_post_theta 20" in note for note in export.to_bindsnet(slowing).notes)


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
    """The defaults (Norse's reading): seconds, voltages from each layer's reset potential,
    BindsNET's jumps carried by the weights, no Delay nodes."""
    import nir

    stored = ckpt.load(source)
    config = stored.config
    path = tmp_path / "network.nir"
    result = service.export(source, "nir", path)
    assert any("STDP" in note for note in result.not_carried)
    assert any("theta" in note for note in result.not_carried)
    assert any("refractory" in note for note in result.not_carried)
    graph = nir.read(path)
    assert graph.metadata["time_unit"] == "s" and graph.metadata["voltage_zero"] == "reset"
    assert float(graph.metadata["dt"]) == pytest.approx(config.dt * 1e-3)
    assert not any(isinstance(node, nir.Delay) for node in graph.nodes.values())

    exc = graph.nodes["exc"]
    tau_exc = export.euler_tau(100.0, config.dt)  # BindsNET's DiehlAndCookNodes: tau 100 ms
    assert 1 - config.dt / tau_exc == pytest.approx(np.exp(-config.dt / 100.0))
    np.testing.assert_allclose(exc.tau, tau_exc * 1e-3, rtol=1e-6)
    assert np.all(exc.r == 1) and np.all(exc.v_leak == -5.0) and np.all(exc.v_reset == 0.0)  # rest -65, reset -60 mV
    theta = stored.tensors.theta.numpy()
    np.testing.assert_allclose(exc.v_threshold, config.exc_thresh + theta + 60.0, rtol=1e-6)
    np.testing.assert_array_equal(exc.metadata["theta"], theta)
    assert float(exc.metadata["theta_plus"]) == config.theta_plus
    assert float(exc.metadata["refractory_period"]) == pytest.approx(5e-3)
    # a weight w (mV that BindsNET adds) becomes w tau/dt: Norse adds dt/tau of its input
    np.testing.assert_allclose(graph.nodes["input_to_exc"].weight, stored.tensors.weights.t().numpy() * tau_exc / config.dt,
                               rtol=1e-6)
    if config.model == "diehl-cook-2015":
        inh = graph.nodes["inh"]  # LIFNodes: tau 10 ms, rest -60, reset -45, threshold -40 mV
        tau_inh = export.euler_tau(10.0, config.dt)
        np.testing.assert_allclose(inh.tau, tau_inh * 1e-3, rtol=1e-6)
        assert np.all(inh.v_leak == -15.0) and np.all(inh.v_reset == 0.0) and np.all(inh.v_threshold == 5.0)
        assert float(inh.metadata["refractory_period"]) == pytest.approx(2e-3)
        for name, tau in (("exc_to_inh", tau_inh), ("inh_to_exc", tau_exc)):
            np.testing.assert_allclose(graph.nodes[name].weight, stored.tensors.lateral[name].t().numpy() * tau / config.dt,
                                       rtol=1e-6, err_msg=name)
    else:
        assert "inh" not in graph.nodes
        np.testing.assert_allclose(graph.nodes["recurrent"].weight,
                                   stored.tensors.lateral["recurrent"].t().numpy() * tau_exc / config.dt, rtol=1e-6)
    np.testing.assert_array_equal(graph.nodes["output"].metadata["assignments"], stored.labels.assignments.numpy())
    assert json.loads(graph.nodes["output"].metadata["class_names"]) == stored.class_names


def test_nir_snntorch_preset_has_one_threshold_no_leak_and_bindsnet_weights(trained_run):
    stored = ckpt.load(trained_run.checkpoint)
    config = stored.config
    graph = export.nir_graph(stored, export.NIR_PRESETS["snntorch"])
    exc = graph.nodes["exc"]
    assert np.all(exc.v_threshold == 1) and np.all(exc.v_leak == 0)
    distance = config.exc_thresh + stored.tensors.theta.numpy() + 65.0  # threshold above rest, mV
    np.testing.assert_allclose(exc.v_reset, 5.0 / distance, rtol=1e-5)
    tau = export.euler_tau(100.0, config.dt) * 1e-4 / config.dt  # one step is 1e-4 in snnTorch
    np.testing.assert_allclose(exc.tau, tau, rtol=1e-6)
    np.testing.assert_allclose(exc.r, exc.tau / 1e-4, rtol=1e-5)  # snnTorch's w_scale r dt / tau is 1
    np.testing.assert_allclose(graph.nodes["input_to_exc"].weight, stored.tensors.weights.t().numpy() / distance[:, None],
                               rtol=1e-5)


def test_nir_explicit_delays_follow_bindsnet_modes(source):
    import nir

    stored = ckpt.load(source)
    graph = export.nir_graph(stored, export.NirOptions(time_unit="ms", delays="explicit"))
    delays = {name for name, node in graph.nodes.items() if isinstance(node, nir.Delay)}
    if stored.config.model == "diehl-cook-2015":  # synchronous mode: every connection reads the previous step
        assert delays == {"input_to_exc_delay", "exc_to_inh_delay", "inh_to_exc_delay"}
    else:
        assert delays == {"recurrent_delay"}  # one-step mode: only the way back waits a step
    for name in delays:
        assert np.all(graph.nodes[name].delay == stored.config.dt)


def test_nir_graph_with_its_delays_and_refractory_periods_simulates_spike_for_spike_like_snnctl(source):
    stored = ckpt.load(source)
    spikes = input_spikes(stored.config)
    got = simulate_nir(export.nir_graph(stored, export.NIR_PRESETS["delays"]), spikes.numpy().astype(np.float32))
    expected = snnctl_spikes(stored, spikes).numpy()
    assert expected.sum() > 0  # a comparison of silences would prove nothing
    np.testing.assert_array_equal(got, expected)


def test_norse_runs_the_default_export_as_nir_reads_it(source, tmp_path):
    """Norse's from_nir, with its defaults, on the file that export writes with its
    defaults: the same spikes as the reference reading without refractory periods."""
    import nir
    import norse.torch

    stored = ckpt.load(source)
    path = tmp_path / "network.nir"
    service.export(source, "nir", path)
    graph = nir.read(path)
    model = norse.torch.from_nir(graph, ignore_warnings=True)
    spikes = input_spikes(stored.config)
    state, got = None, []
    with torch.no_grad():
        for x in spikes.float():
            y, state = model(x, state)
            got.append(y.bool())
    expected = simulate_nir(graph, spikes.numpy().astype(np.float32), refractory=False)
    assert expected.sum() > 0
    np.testing.assert_array_equal(torch.stack(got).numpy(), expected)


@pytest.mark.parametrize("consumer", ["norse", "snntorch"])
def test_nir_consumers_classify_like_snnctl(trained_run, consumer):
    """The round trip users make: export, load in the NIR tool, present Poisson digits,
    vote with the exported assignments; within a few points of snnctl on the same spikes."""
    nir_check = bench_module("nir_check")  # its runners load a graph in each NIR consumer
    stored = ckpt.load(trained_run.checkpoint)
    config = stored.config.replace(one_spike="off")
    test = data.load_splits(config, lambda message: None).test
    images, targets = test.images[:N_CLASSIFIED], test.labels[:N_CLASSIFIED]
    runner, preset = nir_check.CONSUMERS[consumer]
    graph = nir_check.GraphEngine(config, runner(export.nir_graph(stored, export.NIR_PRESETS[preset])))
    reference = nir_check.SnnctlEngine(config, engines.make_engine(config, stored.tensors.clone()))
    stored.config = config
    got, got_rate = nir_check.accuracy(stored, graph, images, targets, N_CLASSIFIED)
    expected, _ = nir_check.accuracy(stored, reference, images, targets, N_CLASSIFIED)
    assert expected > 0.4 and got_rate > 1  # the old export made Norse silent
    assert abs(got - expected) <= 0.08, (got, expected)


def test_bad_nir_option_is_one_error_naming_option_and_value():
    with pytest.raises(ConfigError, match=r"--nir-time-unit: 'h' is not one of s, ms"):
        export.NirOptions(time_unit="h")
    with pytest.raises(ConfigError, match=r"--nir-step: -1"):
        export.NirOptions(step=-1)
    with pytest.raises(ConfigError, match=r"--nir-for: 'lava' is not one of norse, snntorch, delays"):
        export.nir_options("lava")
    with pytest.raises(ConfigError, match=r"--nir-delays: 'none'"):
        export.nir_options("snntorch", delays="none")


def test_nir_options_are_a_preset_with_the_changes_asked():
    options = export.nir_options("snntorch", time_unit="ms", delays=None)
    assert options == export.NirOptions(time_unit="ms", step=1e-4, voltage_zero="rest", threshold="one", r="tau/dt")
    assert export.nir_options() == export.NirOptions()


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


def _export_nir(checkpoint: str, path: Path, *options: str):
    """``snnctl export CKPT --format nir -o PATH OPTIONS``, the graph read back with nir.read."""
    import nir

    result = runner.invoke(app, ["export", checkpoint, "--format", "nir", "-o", str(path), *options])
    assert result.exit_code == 0, result.output
    return nir.read(path)


def test_export_nir_flags_shape_the_graph_for_each_consumer(trained_run, tmp_path):
    """Each consumer's preset from the command line, as docs/export.md states the flags;
    the graph read back with nir.read is the one the Python options make."""
    import nir

    stored = ckpt.load(trained_run.checkpoint)
    norse_graph = _export_nir(trained_run.checkpoint, tmp_path / "norse.nir")
    assert norse_graph.metadata["time_unit"] == "s" and float(norse_graph.metadata["dt"]) == pytest.approx(1e-3)
    assert not any(isinstance(node, nir.Delay) for node in norse_graph.nodes.values())

    snntorch_graph = _export_nir(trained_run.checkpoint, tmp_path / "snntorch.nir", "--nir-for", "snntorch")
    assert float(snntorch_graph.metadata["dt"]) == pytest.approx(1e-4)
    exc = snntorch_graph.nodes["exc"]
    assert np.all(exc.v_threshold == 1) and np.all(exc.v_leak == 0)
    np.testing.assert_allclose(exc.tau, export.nir_graph(stored, export.NIR_PRESETS["snntorch"]).nodes["exc"].tau)

    changed = _export_nir(trained_run.checkpoint, tmp_path / "ms.nir", "--nir-time-unit", "ms", "--nir-delays",
                          "explicit", "--nir-step", "0.5", "--nir-voltage-zero", "rest", "--nir-threshold", "one",
                          "--nir-r", "tau/dt")
    assert changed.metadata["time_unit"] == "ms" and float(changed.metadata["dt"]) == 0.5
    assert {name for name, node in changed.nodes.items() if isinstance(node, nir.Delay)} == {
        "input_to_exc_delay", "exc_to_inh_delay", "inh_to_exc_delay"}
    expected = export.nir_graph(stored, export.NirOptions(time_unit="ms", delays="explicit", step=0.5,
                                                          voltage_zero="rest", threshold="one", r="tau/dt"))
    for name in ("exc", "inh"):
        for field in ("tau", "r", "v_leak", "v_reset", "v_threshold"):
            np.testing.assert_allclose(getattr(changed.nodes[name], field), getattr(expected.nodes[name], field),
                                       err_msg=f"{name}.{field}")


def test_norse_and_snntorch_load_what_the_export_command_writes(trained_run, tmp_path):
    """The files of `snnctl export --format nir [--nir-for snntorch]` load in each tool and
    make excitatory spikes on a bright digit (the first export left Norse silent)."""
    import contextlib
    import io

    import norse.torch
    import snntorch.import_nir
    import snntorch.utils

    stored = ckpt.load(trained_run.checkpoint)
    spikes = input_spikes(stored.config).float()
    norse_model = norse.torch.from_nir(_export_nir(trained_run.checkpoint, tmp_path / "norse.nir"),
                                       ignore_warnings=True)
    with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints its weight scaling
        snntorch_model = snntorch.import_nir.import_from_nir(
            _export_nir(trained_run.checkpoint, tmp_path / "snntorch.nir", "--nir-for", "snntorch"))
    with torch.no_grad():
        state, norse_count = None, 0
        for x in spikes:
            z, state = norse_model(x, state)
            norse_count += int(z.sum())
        snntorch.utils.reset(snntorch_model)
        state, snntorch_count = None, 0
        for x in spikes:
            z, state = snntorch_model(x) if state is None else snntorch_model(x, state)
            snntorch_count += int(z.sum())
    assert norse_count > 0 and snntorch_count > 0


def test_nir_flags_with_another_format_or_a_bad_value_are_one_line(trained_run, tmp_path):
    out = tmp_path / "network.npz"
    result = runner.invoke(app, ["export", trained_run.checkpoint, "-f", "npz", "-o", str(out), "--nir-for", "snntorch"])
    assert_one_line_error(result, 2, "--nir-for", "--format nir")
    result = runner.invoke(app, ["export", trained_run.checkpoint, "-f", "nir", "-o", str(out), "--nir-time-unit", "h"])
    assert_one_line_error(result, 2, "--nir-time-unit", "'h'")
    result = runner.invoke(app, ["export", trained_run.checkpoint, "-f", "nir", "-o", str(out), "--nir-step", "0"])
    assert_one_line_error(result, 2, "--nir-step")
    assert not out.exists()


@pytest.mark.parametrize("command", [["export", "--format", "npz", "-o"], ["evaluate", "--n", "10", "--predictions"]])
def test_an_output_that_is_the_checkpoint_read_is_refused_even_with_force(trained_run, tmp_path, command):
    import shutil

    copy = tmp_path / "run" / "checkpoint.safetensors"
    copy.parent.mkdir()
    shutil.copy(trained_run.checkpoint, copy)
    before = copy.read_bytes()
    result = CliRunner().invoke(app, [command[0], str(copy.parent), *command[1:], str(copy), "--force"])
    assert_one_line_error(result, 2, str(copy), "is the checkpoint this command reads")
    assert copy.read_bytes() == before
