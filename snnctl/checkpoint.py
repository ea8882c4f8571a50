"""Checkpoints: one safetensors file with the network, its labels and its story.

The format is documented in docs/checkpoint.md. Only safetensors are read, never a
pickle. Reading checks, before any tensor is loaded, the format name and version, the
stored parameters, and every tensor's name, dtype and shape against those parameters (so
a file cannot make the reader allocate more than its parameters imply); after loading,
that every float tensor is finite and that classes and spike counts are in range.
Writing is atomic: a temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from typing import TYPE_CHECKING, Collection

import numpy as np

from snnctl import __version__
from snnctl import config as cfg
from snnctl.errors import SnnctlError
from snnctl.files import write_atomic
from snnctl.readout.linear import METADATA_NAMES as READOUT_METADATA
from snnctl.readout.linear import TENSOR_NAMES as READOUT_KEYS
from snnctl.readout.linear import tensor_shapes as readout_shapes
from snnctl.readout.linear import LinearReadout

if TYPE_CHECKING:
    import torch

    from snnctl.network import NetworkTensors
    from snnctl.readout.vote import LabelState

FORMAT_NAME = "snnctl-checkpoint"
CHECKPOINT_NAME = "checkpoint.safetensors"  # a run directory's checkpoint
# 2: the linear readout (readout.* tensors and metadata); version 1 files still load.
FORMAT_VERSION = 2
LABEL_KEYS = ("labels.assignments", "labels.proportions", "labels.rates")
# Counts (samples seen, epochs, positions) are below 2**53: exact as JSON numbers and as the
# int64 steps of a TensorBoard log, where a larger one fails mid-run.
MAX_COUNT = 2**53 - 1
WINDOW_KEYS = ("train.window_counts", "train.window_labels")
# The running sum of the weights averaged over the end of training (snnctl.service.averaging).
WEIGHTS_SUM_KEY = "train.weights_sum"


@dataclass
class Progress:
    """Where training stands: resume continues from ``epoch`` at ``position``."""

    samples_seen: int = 0
    epoch: int = 0  # completed epochs
    position: int = 0  # samples into the current epoch
    finished: bool = False


@dataclass
class Checkpoint:
    config: cfg.Config
    tensors: "NetworkTensors"
    class_names: list[str]
    labels: "LabelState | None" = None
    progress: Progress = field(default_factory=Progress)
    # The running-accuracy window of training: spike counts and labels not yet scored.
    window: "tuple[torch.Tensor, torch.Tensor] | None" = None
    # Free-form facts (data origin, test accuracy, ...), stored as JSON.
    info: dict = field(default_factory=dict)
    created: str = ""
    versions: dict = field(default_factory=dict)
    # The linear readout fitted on the training split's spike counts (absent before version 2).
    readout: LinearReadout | None = None
    # With average_weights, inside the stretch averaged: the sum of the weights' snapshots so far.
    weights_sum: "torch.Tensor | None" = None


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import torch

    found = {"snnctl": __version__, "torch": torch.__version__}
    try:
        found["bindsnet"] = md.version("bindsnet")
    except md.PackageNotFoundError:
        found["bindsnet"] = "not installed"
    return found


def named_tensors(checkpoint: Checkpoint) -> "dict[str, torch.Tensor]":
    """Every tensor of a checkpoint under its file name (docs/checkpoint.md)."""
    tensors = dict(checkpoint.tensors.named())
    if checkpoint.labels is not None:
        tensors.update(checkpoint.labels.named())
    if checkpoint.window is not None:
        tensors.update(zip(WINDOW_KEYS, checkpoint.window))
    if checkpoint.weights_sum is not None:
        tensors[WEIGHTS_SUM_KEY] = checkpoint.weights_sum
    if checkpoint.readout is not None:
        import torch

        tensors.update((name, torch.from_numpy(array)) for name, array in checkpoint.readout.to_tensors().items())
    return {name: value.detach().cpu().contiguous() for name, value in tensors.items()}


def _metadata_of(checkpoint: Checkpoint) -> dict[str, str]:
    progress = checkpoint.progress
    return {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": checkpoint.config.to_json(),
        "class_names": json.dumps(checkpoint.class_names),
        "samples_seen": str(progress.samples_seen),
        "epoch": str(progress.epoch),
        "position": str(progress.position),
        "finished": json.dumps(progress.finished),
        "reduction": checkpoint.config.reduction,
        "info": json.dumps(checkpoint.info),
        "versions": json.dumps(_versions()),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(checkpoint.readout.metadata() if checkpoint.readout is not None else {}),
    }


def save(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Save atomically; on failure (a full disk) the previous file at ``path`` stays intact."""
    from safetensors.torch import save as to_bytes

    path = Path(path)
    write_atomic(path, to_bytes(named_tensors(checkpoint), metadata=_metadata_of(checkpoint)))
    return path


def _expected(config: cfg.Config, n_classes: int, window_rows: int) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
    """Name -> (shape, allowed safetensors dtypes) of every tensor a checkpoint may hold."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
        name: (shape, ("F32",)) for name, shape in config.tensor_shapes().items()
    }
    n = config.n_neurons
    shapes["labels.assignments"] = ((n,), ("I64", "I32"))
    shapes["labels.proportions"] = ((n, n_classes), ("F32",))
    shapes["labels.rates"] = ((n, n_classes), ("F32",))
    shapes["train.window_counts"] = ((window_rows, n), ("I32",))
    shapes["train.window_labels"] = ((window_rows,), ("I64",))
    shapes[WEIGHTS_SUM_KEY] = ((config.n_inputs, n), ("F64",))
    readout = readout_shapes(n_classes, config.n_readout_features)
    shapes.update({name: (shape, ("F32",)) for name, shape in readout.items()})
    return shapes


def _meta(metadata: dict[str, str], key: str, source: str) -> str:
    if key not in metadata:
        raise SnnctlError(f"{source}: checkpoint metadata has no {key!r}")
    return metadata[key]


def _int_meta(metadata: dict[str, str], key: str, source: str) -> int:
    """A count (samples, epochs, a version): an integer, never negative."""
    text = _meta(metadata, key, source)
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise SnnctlError(f"{source}: checkpoint metadata {key!r} is {text[:40]!r}, not a whole number")
    if value > MAX_COUNT:
        raise SnnctlError(f"{source}: checkpoint metadata {key!r} is {text[:40]!r}, out of range (at most 2**53 - 1)")
    return value


_JSON_KINDS = {dict: "an object", list: "a list", object: "a value"}


def _json_meta(metadata: dict[str, str], key: str, source: str, default=None, kind: type = object):
    if key not in metadata and default is not None:
        return default
    try:
        value = json.loads(_meta(metadata, key, source))
    except (ValueError, RecursionError):  # also numbers too long for int(), nesting too deep
        raise SnnctlError(f"{source}: checkpoint metadata {key!r} is not valid JSON") from None
    if not isinstance(value, kind):
        raise SnnctlError(f"{source}: checkpoint metadata {key!r} is not {_JSON_KINDS[kind]}")
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _whole_group(names: tuple[str, ...], present: Collection[str], what: str, source: str) -> bool:
    """Whether the group ``names`` (a label state, the training window, the linear readout)
    is in ``present``; it comes whole or not at all, and a part of it is a damaged file."""
    found = [name for name in names if name in present]
    if found and len(found) < len(names):
        missing = next(name for name in names if name not in present)
        raise SnnctlError(f"{source}: {missing!r} is missing ({what} needs all of {', '.join(names)})")
    return bool(found)


@dataclass
class StoredCheckpoint:
    """A checked checkpoint file as NumPy arrays (no torch needed: ``inspect`` is fast)."""

    config: cfg.Config
    class_names: list[str]
    arrays: dict[str, np.ndarray]
    progress: Progress
    info: dict
    created: str
    versions: dict
    format_version: int
    readout: LinearReadout | None = None


def locate(path: str | Path) -> Path:
    """``path``, or the checkpoint of the run directory ``path`` (``CHECKPOINT_NAME`` in
    it): every command that reads a checkpoint takes either."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() and (path / CHECKPOINT_NAME).is_file() else path


def _checkpoints_below(folder: Path, shown: int = 3) -> str:
    """The runs' checkpoints a study's or a sweep's directory holds (runs/NAME/), named for
    the error that refuses the directory itself."""
    found = sorted(folder.glob(f"*/{CHECKPOINT_NAME}")) + sorted(folder.glob(f"*/*/{CHECKPOINT_NAME}"))
    if not found:
        return ""
    named = ", ".join(str(path) for path in found[:shown])
    return f"; its runs' checkpoints: {named}" + (f" and {len(found) - shown} more" if len(found) > shown else "")


def read(path: str | Path) -> StoredCheckpoint:
    """Read and check a checkpoint; every problem is one :class:`SnnctlError` line."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise SnnctlError(f"{source}: is a directory without a checkpoint (a run directory holds "
                          f"{CHECKPOINT_NAME}){_checkpoints_below(path)}")
    if not path.is_file():
        raise SnnctlError(f"{source}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="np") as reader:
            metadata = reader.metadata() or {}
            config, class_names, version, expected = _check_header(metadata, reader, source)
            arrays = {name: reader.get_tensor(name) for name in reader.keys() if name in expected}
    except SafetensorError as exc:
        raise SnnctlError(f"{source}: not a readable safetensors file ({_one_line(exc)})") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise SnnctlError(f"{source}: cannot read checkpoint ({_one_line(exc)})") from None
    _check_values(arrays, config, len(class_names), source)
    progress = Progress(
        samples_seen=_int_meta(metadata, "samples_seen", source),
        epoch=_int_meta(metadata, "epoch", source),
        position=_int_meta(metadata, "position", source),
        finished=bool(_json_meta(metadata, "finished", source)),
    )
    if progress.position > progress.samples_seen:
        raise SnnctlError(f"{source}: checkpoint metadata 'position' ({progress.position}) is beyond "
                          f"'samples_seen' ({progress.samples_seen}): the images of an epoch are counted in both")
    return StoredCheckpoint(
        config=config,
        class_names=class_names,
        arrays=arrays,
        progress=progress,
        info=_json_meta(metadata, "info", source, default={}, kind=dict),
        created=metadata.get("created", ""),
        versions=_json_meta(metadata, "versions", source, default={}, kind=dict),
        format_version=version,
        readout=_readout(arrays, metadata, source),
    )


def _readout(arrays: dict[str, np.ndarray], metadata: dict[str, str], source: str) -> LinearReadout | None:
    """The linear readout, which comes whole (tensors and metadata) or not at all."""
    if not _whole_group((*READOUT_KEYS, *READOUT_METADATA), {**arrays, **metadata}, "the linear readout", source):
        return None
    return LinearReadout.from_tensors(arrays, metadata, source)  # it reads only the readout's names


def load(path: str | Path) -> Checkpoint:
    """The checkpoint at ``path`` as torch tensors, ready to run (see :func:`read`)."""
    import torch

    from snnctl import network as net
    from snnctl.readout.vote import LabelState

    stored = read(path)
    tensors = {name: torch.from_numpy(array.copy()) for name, array in stored.arrays.items()}
    labels = LabelState.from_named(tensors) if all(k in tensors for k in LABEL_KEYS) else None
    window = tuple(tensors[k] for k in WINDOW_KEYS) if all(k in tensors for k in WINDOW_KEYS) else None
    return Checkpoint(
        config=stored.config,
        tensors=net.from_named(tensors, stored.config.model),
        class_names=stored.class_names,
        labels=labels,
        progress=stored.progress,
        window=window,
        info=stored.info,
        created=stored.created,
        versions=stored.versions,
        readout=stored.readout,
        weights_sum=tensors.get(WEIGHTS_SUM_KEY),
    )


def _check_header(metadata: dict[str, str], reader, source: str):
    """Everything that can be checked before a tensor is read."""
    name = metadata.get("format")
    if name != FORMAT_NAME:
        raise SnnctlError(f"{source}: not an snnctl checkpoint (format {name!r}, expected {FORMAT_NAME!r})")
    version = _int_meta(metadata, "format_version", source)
    if version > FORMAT_VERSION:
        raise SnnctlError(f"{source}: checkpoint format version {version} is newer than this snnctl reads ({FORMAT_VERSION}); upgrade snnctl")
    if version < 1:
        raise SnnctlError(f"{source}: checkpoint format version {version} is not valid")
    config = cfg.from_json(_meta(metadata, "config", source), f"{source} (stored parameters)")
    class_names = _json_meta(metadata, "class_names", source, kind=list)
    if len(class_names) != config.n_classes:
        raise SnnctlError(f"{source}: class_names must list {config.n_classes} names (n_classes)")
    present = set(reader.keys())
    _whole_group(LABEL_KEYS, present, "a label state", source)
    expected = _expected(config, len(class_names), _window_rows(reader, present, config, source))
    for name in config.tensor_shapes():
        if name not in present:
            raise SnnctlError(f"{source}: tensor {name!r} is missing")
    for name in present & set(expected):
        shape, dtypes = expected[name]
        found = tuple(reader.get_slice(name).get_shape())
        if found != shape:
            raise SnnctlError(f"{source}: tensor {name!r} has shape {list(found)}, the stored parameters imply {list(shape)}")
        dtype = reader.get_slice(name).get_dtype()
        if dtype not in dtypes:
            raise SnnctlError(f"{source}: tensor {name!r} has dtype {dtype}, expected {dtypes[0]}")
    return config, [str(c) for c in class_names], version, expected


def weights_outside_range(arrays: dict[str, np.ndarray], config: cfg.Config) -> list[str]:
    """The learned weights that lie outside [wmin, wmax], which training never leaves: a
    checkpoint edited or made elsewhere (one line per tensor, empty when all lie inside)."""
    name = "input_to_exc.weight"
    weights = arrays.get(name)
    if weights is None or not weights.size:
        return []
    low, high = float(weights.min()), float(weights.max())
    if low >= config.wmin and high <= config.wmax:
        return []
    return [f"tensor {name!r} holds values in {low:.4g}..{high:.4g}, outside [wmin, wmax] = "
            f"[{config.wmin:g}, {config.wmax:g}]: training clips them there on its first update"]


def _window_rows(reader, present: set[str], config: cfg.Config, source: str) -> int:
    """Rows of the training window (samples not yet scored), which comes whole or not at all.

    A window is flushed once it reaches ``update_interval`` samples, so a longer one is a
    damaged file, refused before it is read."""
    if not _whole_group(WINDOW_KEYS, present, "the training window", source):
        return 0
    shape = list(reader.get_slice("train.window_labels").get_shape())
    bound = config.update_interval + config.batch_size
    if len(shape) != 1 or shape[0] >= bound:
        raise SnnctlError(f"{source}: tensor 'train.window_labels' has shape {shape}, "
                          f"the stored parameters allow [n] with n < {bound} (update_interval + batch_size)")
    return shape[0]


def _check_values(arrays: dict[str, np.ndarray], config: cfg.Config, n_classes: int, source: str) -> None:
    """What only the values can tell: finite floats, classes and counts in range."""
    for name, array in arrays.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise SnnctlError(f"{source}: tensor {name!r} holds NaN or infinite values")
    ranges = {"labels.assignments": (-1, n_classes - 1), "train.window_labels": (0, n_classes - 1),
              "train.window_counts": (0, config.steps)}
    for name, (low, high) in ranges.items():
        array = arrays.get(name)
        if array is not None and array.size and (array.min() < low or array.max() > high):
            raise SnnctlError(f"{source}: tensor {name!r} holds values outside {low}..{high}")
