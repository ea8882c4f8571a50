"""A trained network in other formats: npz, a torch state dict, a BindsNET Network, a NIR graph.

Each writer takes a loaded :class:`~snnctl.checkpoint.Checkpoint` and returns the file's
bytes (the service writes them atomically) with the notes on what the format leaves
out. The formats, and the mapping of the network onto the Neuromorphic Intermediate
Representation (NIR) with its units, are documented in docs/export.md.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnctl import checkpoint as ckpt
from snnctl import network as net
from snnctl.config import Config
from snnctl.errors import ConfigError
from snnctl.nir_options import NIR_PRESETS, NirOptions, nir_options  # noqa: F401 (snnctl.export.nir_options, docs/export.md)

if TYPE_CHECKING:
    import nir
    from bindsnet.network import Network

NPZ_METADATA = "metadata"  # the npz entry holding the metadata as a JSON string


@dataclass
class Exported:
    data: bytes
    tensors: list[str]  # checkpoint tensor names the file holds
    notes: list[str] = field(default_factory=list)  # what the format cannot carry


def metadata(checkpoint: ckpt.Checkpoint) -> dict:
    """Everything but the tensors: parameters, class names, progress and provenance."""
    return {
        "checkpoint_format": ckpt.FORMAT_NAME,
        "checkpoint_format_version": ckpt.FORMAT_VERSION,
        "config": checkpoint.config.to_dict(),
        "class_names": checkpoint.class_names,
        "progress": asdict(checkpoint.progress),
        "info": checkpoint.info,
        "versions": checkpoint.versions,
        "created": checkpoint.created,
        "readout": checkpoint.readout.metadata() if checkpoint.readout is not None else None,
    }


def _tensors(checkpoint: ckpt.Checkpoint) -> dict[str, torch.Tensor]:
    # clone: each tensor saved with its own storage, not a view into a larger one
    return {name: value.clone() for name, value in ckpt.named_tensors(checkpoint).items()}


def to_npz(checkpoint: ckpt.Checkpoint) -> Exported:
    """``numpy.savez``: one array per checkpoint tensor (same names) and ``metadata``,
    a 0-d string array of JSON, so ``numpy.load(path)`` needs no pickle."""
    tensors = _tensors(checkpoint)
    arrays = {name: value.numpy() for name, value in tensors.items()}
    arrays[NPZ_METADATA] = np.array(json.dumps(metadata(checkpoint)))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return Exported(buffer.getvalue(), sorted(tensors))


def to_torch(checkpoint: ckpt.Checkpoint) -> Exported:
    """``torch.save`` of a dict of tensors only, readable with ``weights_only=True``."""
    tensors = _tensors(checkpoint)
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return Exported(buffer.getvalue(), sorted(tensors),
                    ["parameters and class names (tensors only: read them from the checkpoint or the npz export)"])


def bindsnet_network(checkpoint: ckpt.Checkpoint) -> Network:
    """The BindsNET model the checkpoint's parameters describe, holding its learned state,
    with learning off (``Network.train(True)`` turns STDP and theta adaptation back on)."""
    network = net.build_bindsnet(checkpoint.config, checkpoint.tensors, torch.device("cpu"))
    network.train(False)
    return network


def to_bindsnet(checkpoint: ckpt.Checkpoint) -> Exported:
    """The network saved by BindsNET's own ``Network.save`` (a pickle of the whole
    object), which ``bindsnet.network.load`` reads back."""
    network = bindsnet_network(checkpoint)
    with tempfile.TemporaryDirectory(prefix="snnctl-export-") as folder:
        path = Path(folder) / "network.pt"
        network.save(str(path))
        data = path.read_bytes()
    notes = ["label state and class names (a BindsNET Network has no place for them)"]
    if checkpoint.config.one_spike == "winner":
        notes.append("one_spike rule 'winner' (snnctl's fast engine only): in BindsNET every neuron that "
                     "crosses its threshold spikes")
    if checkpoint.config.nu_post_theta is not None:
        notes.append(f"nu_post_theta {checkpoint.config.nu_post_theta:g} (snnctl's fast engine only): learning again "
                     f"in BindsNET, every neuron potentiates at nu_post however far its threshold has risen")
    notes.extend(_preparation_notes(checkpoint.config))
    return Exported(data, sorted(checkpoint.tensors.named()), notes)


def _delayed(config: Config, connection: str) -> bool:
    """Whether BindsNET feeds ``connection`` with the previous step's spikes: every
    connection in its default synchronous mode; in one-step mode only those whose source
    layer updates after the target (inhibition back to the excitatory layer)."""
    return not config.one_step or connection in ("inh_to_exc", "recurrent")


def euler_tau(tau: float, dt: float) -> float:
    """The time constant whose forward-Euler step ``v += dt / tau' (v_leak - v)`` decays as
    BindsNET's exact step ``v_leak + (v - v_leak) exp(-dt / tau)``: ``tau' = dt / (1 - exp(-dt / tau))``."""
    return dt / -np.expm1(-dt / tau)


@dataclass(frozen=True)
class _Population:
    """One BindsNET layer as a NIR LIF, and the factor that turns a weight (the jump in mV
    that BindsNET adds to a neuron's voltage) into the graph's current into that neuron."""

    node: nir.LIF
    input_gain: np.ndarray  # [n]


def _population(layer, threshold_mv: np.ndarray, config: Config, options: NirOptions, extra: dict) -> _Population:
    """A BindsNET ``LIFNodes`` / ``DiehlAndCookNodes`` layer as a NIR LIF, in the discrete
    reading that NIR consumers simulate (Norse's ``LIFBoxCell``, snnTorch's ``Leaky``): per
    step ``v += step / tau (v_leak - v + r I)`` with ``I = W s`` (spikes of value 1), then
    ``v > v_threshold`` spikes and sets ``v = v_reset``.

    BindsNET: ``v <- rest + (v - rest) exp(-dt / tau)``, then ``v += x`` (the weighted spikes,
    mV) outside the refractory period. The tau of :func:`euler_tau` makes the decays equal;
    ``r = 1`` and weights multiplied by ``tau' / dt`` make the jumps equal (Norse ignores r),
    as do ``r = tau' / dt`` and BindsNET's weights (``options.r``).
    Voltages are shifted so that ``options.voltage_zero`` is 0 (Norse resets to 0 whatever
    v_reset says; snnTorch has no v_leak) and, with ``threshold="one"``, each neuron's
    voltage is divided by its threshold's distance from that zero.
    """
    import nir

    dt = config.dt
    n = layer.n
    rest, reset = float(layer.rest), float(layer.reset)
    zero = reset if options.voltage_zero == "reset" else rest
    threshold = threshold_mv.astype(np.float64) - zero
    scale = 1.0 / threshold if options.threshold == "one" else np.ones(n)
    tau_ms = euler_tau(float(layer.tc_decay), dt)
    to_graph = options.graph_step(dt) / dt  # graph time units per ms

    def f32(value: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, np.float64), (n,)).astype(np.float32)

    r = tau_ms / dt if options.r == "tau/dt" else 1.0
    node = nir.LIF(tau=f32(tau_ms * to_graph), r=f32(r), v_leak=f32((rest - zero) * scale),
                   v_threshold=f32(threshold * scale), v_reset=f32((reset - zero) * scale),
                   metadata={"refractory_period": float(layer.refrac) * to_graph, **extra})
    return _Population(node, scale * tau_ms / dt / r)


def _populations(checkpoint: ckpt.Checkpoint, options: NirOptions) -> dict[str, _Population]:
    """The excitatory layer (threshold = exc_thresh + learned theta) and, in the two-layer
    model, the inhibitory one, read from the BindsNET layers snnctl simulates."""
    config, tensors = checkpoint.config, checkpoint.tensors
    network = bindsnet_network(checkpoint)
    exc_layer = network.layers[net.EXC_LAYER[config.model]]
    # The same float32 sum the engines compare the membrane potential against.
    threshold = (exc_layer.thresh.float() + tensors.theta.float()).numpy()
    populations = {"exc": _population(exc_layer, threshold, config, options, {
        "theta": tensors.theta.numpy().copy(), "exc_thresh": float(exc_layer.thresh),
        "theta_plus": config.theta_plus, "tc_theta_decay": config.tc_theta_decay,
        "one_spike": config.one_spike,
    })}
    if config.model == "diehl-cook-2015":
        inh_layer = network.layers[net.INH_LAYER]
        populations["inh"] = _population(inh_layer, np.full(inh_layer.n, float(inh_layer.thresh)), config, options, {})
    return populations


# Each weight tensor of the checkpoint as (source, target) nodes; in this order, nirtorch runs
# the two-layer loop exc -> inh -> exc from the input.
CONNECTIONS = {"input_to_exc": ("input", "exc"), "exc_to_inh": ("exc", "inh"), "inh_to_exc": ("inh", "exc"),
               "recurrent": ("exc", "exc")}


def nir_graph(checkpoint: ckpt.Checkpoint, options: NirOptions = NirOptions()) -> nir.NIRGraph:
    """The network as a NIR graph: input, the input-to-excitatory weights, the excitatory
    LIF population (threshold = exc_thresh + learned theta), the inhibition, output.

    Weights become ``Linear`` nodes (NIR's ``[out, in]``, the transpose of BindsNET's
    ``[in, out]``), multiplied by the target's input gain (:func:`_population`). With
    ``delays="explicit"`` a connection that BindsNET feeds with the previous step's spikes
    gets a ``Delay`` of one step after it; with ``"implicit"`` there are none, and a
    consumer that runs the graph in order from the input (nirtorch) feeds the loop's way
    back with the previous step's spikes. Neuron parameters are read from the BindsNET
    layers themselves, so they are the ones snnctl simulates.
    """
    import nir

    config, tensors = checkpoint.config, checkpoint.tensors
    step = options.graph_step(config.dt)
    populations = _populations(checkpoint, options)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([config.n_inputs])})}
    nodes.update((name, population.node) for name, population in populations.items())
    edges: list[tuple[str, str]] = []
    connections = {"input_to_exc": tensors.weights, **tensors.lateral}
    for name, (source, target) in CONNECTIONS.items():
        if name not in connections:
            continue
        weights = connections[name].t().double().numpy() * populations[target].input_gain[:, None]
        nodes[name] = nir.Linear(weight=weights.astype(np.float32))
        edges.append((source, name))
        if options.delays == "explicit" and _delayed(config, name):
            nodes[f"{name}_delay"] = nir.Delay(delay=np.full(len(weights), step, np.float32))
            edges.append((name, f"{name}_delay"))
            name = f"{name}_delay"
        edges.append((name, target))
    # Last: nirtorch's executor returns the output of the node it runs last.
    nodes["output"] = nir.Output(output_type={"output": np.array([config.n_neurons])})
    edges.append(("exc", "output"))
    if checkpoint.labels is not None:
        nodes["output"].metadata = {"assignments": checkpoint.labels.assignments.numpy().copy(),
                                    "class_names": json.dumps(checkpoint.class_names)}
    if checkpoint.readout is not None:
        # the linear readout (on the output's spike counts, or on each neuron's input drive): as stored
        nodes["output"].metadata = {**(nodes["output"].metadata or {}), **checkpoint.readout.to_tensors(),
                                    **checkpoint.readout.metadata(), "readout": checkpoint.config.readout}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        "source": "snnctl", "model": config.model, "dt": step, "time_unit": options.time_unit,
        "voltage_zero": options.voltage_zero, "threshold": options.threshold, "delays": options.delays,
        "one_step": config.one_step, "patch_size": config.patch_size or 0, "input_size": config.input_size,
        "readout_pooling": config.readout_pooling, **_input_preparation(config),
    })


def _input_preparation(config: Config) -> dict[str, object]:
    """How an image becomes the input layer's rates before the graph sees it (the keys of
    :mod:`snnctl.data.encodings`), for the graph's metadata: a consumer must prepare its
    images the same way. ``input_length`` 0 means none."""
    return {"deskew": config.deskew, "normalize": config.normalize, "clahe": config.clahe, "gamma": config.gamma,
            "encoding": config.encoding, "input_length": config.input_length or 0.0}


def _preparation_notes(config: Config) -> list[str]:
    """The note on the image's preparation that a network file leaves to its user, if any."""
    steps = [text for wanted, text in (
        (config.deskew, "deskewed (snnctl.data.encodings.deskewed)"),
        (config.normalize == "percentile", "windowed between its 1st and 99th percentiles"),
        (config.clahe, "equalized by CLAHE"),
        (config.gamma != 1.0, f"raised to the power {config.gamma} (each grey level in [0, 1])"),
        (config.encoding == "on-off", "filtered into ON and OFF channels (2 x input_size^2 inputs)"),
        (config.encoding == "rate+on-off",
         "given with its ON and OFF channels beside it (grey, ON, OFF: 3 x input_size^2 inputs)"),
        (config.input_length is not None, f"scaled to Euclidean length {config.input_length}"),
    ) if wanted]
    if not steps:
        return []
    return [f"the input is each image {', then '.join(steps)}, by snnctl before the network (the keys are in "
            f"the parameters and the NIR graph's metadata); give the network images prepared so"]


def to_nir(checkpoint: ckpt.Checkpoint, options: NirOptions = NirOptions()) -> Exported:
    """The graph of :func:`nir_graph` written by ``nir.write`` (HDF5)."""
    import nir

    buffer = io.BytesIO()
    nir.write(buffer, nir_graph(checkpoint, options))
    notes = [
        "STDP (NIR has no plasticity): the weights are frozen as learned",
        ("theta adaptation: the learned theta is folded into v_threshold = exc_thresh + theta; "
         "theta_plus and tc_theta_decay are kept in the exc node's metadata only"),
        "refractory periods: NIR's LIF has none; kept as refractory_period in node metadata",
    ]
    if options.delays == "implicit" and not checkpoint.config.one_step:
        notes.append("BindsNET's one-step delay on the connections into each layer: only the loop's way back "
                     "waits a step (--nir-delays explicit keeps them as Delay nodes)")
    if checkpoint.config.patch_size:
        size = checkpoint.config.patch_size
        pooling = {"global": "maximum over the windows",
                   "centre": "maximum over the windows (and over those at its centre)",
                   "centre-mean": "maximum and mean over the windows (and over those at its centre)"}
        notes.append(f"receptive fields of {size}x{size} windows: the graph is the network on one window; sliding it "
                     f"over a {checkpoint.config.input_size}x{checkpoint.config.input_size} image and the readout's "
                     f"{pooling[checkpoint.config.readout_pooling]} are snnctl's (patch_size and readout_pooling in "
                     f"the graph's metadata)")
    if checkpoint.config.one_spike != "off":
        notes.append(f"one_spike rule {checkpoint.config.one_spike!r}: kept in the exc node's metadata only")
    notes.extend(_preparation_notes(checkpoint.config))
    return Exported(buffer.getvalue(), sorted(checkpoint.tensors.named()), notes)


WRITERS: dict[str, Callable[[ckpt.Checkpoint], Exported]] = {
    "npz": to_npz, "torch": to_torch, "bindsnet": to_bindsnet, "nir": to_nir,
}
FORMATS = tuple(WRITERS)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def export(checkpoint: ckpt.Checkpoint, fmt: str, nir: NirOptions = NirOptions()) -> Exported:
    """The checkpoint in format ``fmt`` (one of :data:`FORMATS`); ``nir`` shapes the NIR graph."""
    if check_format(fmt) == "nir":
        return to_nir(checkpoint, nir)
    return WRITERS[fmt](checkpoint)
