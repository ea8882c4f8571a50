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

if TYPE_CHECKING:
    import nir
    from bindsnet.network import Network

NPZ_METADATA = "metadata"  # the npz entry holding the metadata as a JSON string
# NIR's documented units (NIR primitives table): time constants and delays in ms,
# voltages in mV. BindsNET's layers use the same units, so values map one to one.
NIR_TIME_UNIT, NIR_VOLTAGE_UNIT = "ms", "mV"


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
    return Exported(data, sorted(checkpoint.tensors.named()), notes)


def _delayed(config: Config, connection: str) -> bool:
    """Whether BindsNET feeds ``connection`` with the previous step's spikes: every
    connection in its default synchronous mode; in one-step mode only those whose source
    layer updates after the target (inhibition back to the excitatory layer)."""
    return not config.one_step or connection in ("inh_to_exc", "recurrent")


def _lif(layer, threshold: np.ndarray, extra: dict) -> nir.LIF:
    """A BindsNET ``LIFNodes`` / ``DiehlAndCookNodes`` layer as a NIR LIF.

    BindsNET: ``v <- rest + (v - rest) exp(-dt / tc_decay)``, then ``v += x`` (the
    weighted input spikes, in mV) outside the refractory period. NIR: ``tau dv/dt =
    (v_leak - v) + R I`` with ``I`` a sum of unit-area spikes through the weights: a
    spike of weight w moves v by ``R w / tau``, so ``r = tau`` gives BindsNET's jump of w.
    """
    import nir

    def per_neuron(value: torch.Tensor) -> np.ndarray:
        return np.full(layer.n, float(value), np.float32)

    tau = per_neuron(layer.tc_decay)
    return nir.LIF(tau=tau, r=tau.copy(), v_leak=per_neuron(layer.rest), v_threshold=threshold,
                   v_reset=per_neuron(layer.reset), metadata={"refractory_period": float(layer.refrac), **extra})


def nir_graph(checkpoint: ckpt.Checkpoint) -> nir.NIRGraph:
    """The network as a NIR graph: input, the input-to-excitatory weights, the excitatory
    LIF population (threshold = exc_thresh + learned theta), the inhibition, output.

    Weights become ``Linear`` nodes (NIR's ``[out, in]``, the transpose of BindsNET's
    ``[in, out]``); a connection BindsNET feeds with the previous step's spikes gets a
    ``Delay`` of one step ``dt`` after it. Neuron parameters are read from the BindsNET
    layers themselves, so they are the ones snnctl simulates.
    """
    import nir

    config, tensors = checkpoint.config, checkpoint.tensors
    network = bindsnet_network(checkpoint)
    exc_layer = network.layers[net.EXC_LAYER[config.model]]
    n = config.n_neurons
    # The same float32 sum the engines compare the membrane potential against.
    threshold = (exc_layer.thresh.float() + tensors.theta.float()).numpy()
    nodes: dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type={"input": np.array([config.n_inputs])}),
        "exc": _lif(exc_layer, threshold, {
            "theta": tensors.theta.numpy().copy(), "exc_thresh": float(exc_layer.thresh),
            "theta_plus": config.theta_plus, "tc_theta_decay": config.tc_theta_decay,
            "one_spike": config.one_spike,
        }),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges: list[tuple[str, str]] = [("exc", "output")]
    if checkpoint.labels is not None:
        nodes["output"].metadata = {"assignments": checkpoint.labels.assignments.numpy().copy(),
                                    "class_names": json.dumps(checkpoint.class_names)}

    def connect(source: str, name: str, weights: torch.Tensor, target: str) -> None:
        nodes[name] = nir.Linear(weight=weights.t().contiguous().numpy().copy())
        edges.append((source, name))
        if _delayed(config, name):
            nodes[f"{name}_delay"] = nir.Delay(delay=np.full(weights.shape[1], config.dt, np.float32))
            edges.append((name, f"{name}_delay"))
            name = f"{name}_delay"
        edges.append((name, target))

    connect("input", "input_to_exc", tensors.weights, "exc")
    if config.model == "diehl-cook-2015":
        inh_layer = network.layers[net.INH_LAYER]
        nodes["inh"] = _lif(inh_layer, np.full(n, float(inh_layer.thresh), np.float32), {})
        connect("exc", "exc_to_inh", tensors.lateral["exc_to_inh"], "inh")
        connect("inh", "inh_to_exc", tensors.lateral["inh_to_exc"], "exc")
    else:
        connect("exc", "recurrent", tensors.lateral["recurrent"], "exc")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        "source": "snnctl", "model": config.model, "dt": config.dt, "time_unit": NIR_TIME_UNIT,
        "voltage_unit": NIR_VOLTAGE_UNIT, "one_step": config.one_step,
    })


def to_nir(checkpoint: ckpt.Checkpoint) -> Exported:
    """The graph of :func:`nir_graph` written by ``nir.write`` (HDF5)."""
    import nir

    buffer = io.BytesIO()
    nir.write(buffer, nir_graph(checkpoint))
    notes = [
        "STDP (NIR has no plasticity): the weights are frozen as learned",
        ("theta adaptation: the learned theta is folded into v_threshold = exc_thresh + theta; "
         "theta_plus and tc_theta_decay are kept in the exc node's metadata only"),
        "refractory periods: NIR's LIF has none; kept as refractory_period (ms) in node metadata",
    ]
    if checkpoint.config.one_spike != "off":
        notes.append(f"one_spike rule {checkpoint.config.one_spike!r}: kept in the exc node's metadata only")
    return Exported(buffer.getvalue(), sorted(checkpoint.tensors.named()), notes)


WRITERS: dict[str, Callable[[ckpt.Checkpoint], Exported]] = {
    "npz": to_npz, "torch": to_torch, "bindsnet": to_bindsnet, "nir": to_nir,
}
FORMATS = tuple(WRITERS)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def export(checkpoint: ckpt.Checkpoint, fmt: str) -> Exported:
    """The checkpoint in format ``fmt`` (one of :data:`FORMATS`)."""
    return WRITERS[check_format(fmt)](checkpoint)
