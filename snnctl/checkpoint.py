"""Checkpoints: one safetensors file with the network, its labels and its story.

The format is documented in docs/checkpoint.md. Reading checks, before any tensor is
loaded, the format name and version, the stored parameters, and every tensor's name,
dtype and shape against those parameters; after loading, that weights and thresholds
are finite. Writing is atomic: a temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from snnctl import __version__
from snnctl import config as cfg
from snnctl.errors import SnnctlError

if TYPE_CHECKING:
    import torch

    from snnctl.labels import LabelState
    from snnctl.network import NetworkTensors

FORMAT_NAME = "snnctl-checkpoint"
FORMAT_VERSION = 1
LABEL_KEYS = ("labels.assignments", "labels.proportions", "labels.rates")
WINDOW_KEYS = ("train.window_counts", "train.window_labels")


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


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import torch

    found = {"snnctl": __version__, "torch": torch.__version__}
    try:
        found["bindsnet"] = md.version("bindsnet")
    except md.PackageNotFoundError:
        found["bindsnet"] = "not installed"
    return found


def _tensors_of(checkpoint: Checkpoint) -> "dict[str, torch.Tensor]":
    tensors = dict(checkpoint.tensors.named())
    if checkpoint.labels is not None:
        tensors.update(checkpoint.labels.named())
    if checkpoint.window is not None:
        tensors.update(zip(WINDOW_KEYS, checkpoint.window))
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
    }


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half."""
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Save atomically; on failure (a full disk) the previous file at ``path`` stays intact."""
    from safetensors.torch import save as to_bytes

    path = Path(path)
    data = to_bytes(_tensors_of(checkpoint), metadata=_metadata_of(checkpoint))
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise SnnctlError(f"{path}: checkpoint not saved ({exc.strerror or exc}); any previous file there is unchanged") from None
    return path


_DTYPES = {"F32": "float32", "I64": "int64", "I32": "int32"}


def _expected(config: cfg.Config, n_classes: int) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
    """Name -> (shape, allowed safetensors dtypes) of every tensor a checkpoint may hold."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
        name: (shape, ("F32",)) for name, shape in config.tensor_shapes().items()
    }
    n = config.n_neurons
    shapes["labels.assignments"] = ((n,), ("I64", "I32"))
    shapes["labels.proportions"] = ((n, n_classes), ("F32",))
    shapes["labels.rates"] = ((n, n_classes), ("F32",))
    return shapes


def _meta(metadata: dict[str, str], key: str, source: str) -> str:
    if key not in metadata:
        raise SnnctlError(f"{source}: checkpoint metadata has no {key!r}")
    return metadata[key]


def _int_meta(metadata: dict[str, str], key: str, source: str) -> int:
    text = _meta(metadata, key, source)
    try:
        return int(text)
    except ValueError:
        raise SnnctlError(f"{source}: checkpoint metadata {key!r} is {text!r}, not an integer") from None


def _json_meta(metadata: dict[str, str], key: str, source: str, default=None):
    if key not in metadata and default is not None:
        return default
    try:
        return json.loads(_meta(metadata, key, source))
    except json.JSONDecodeError:
        raise SnnctlError(f"{source}: checkpoint metadata {key!r} is not valid JSON") from None


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


def read(path: str | Path) -> StoredCheckpoint:
    """Read and check a checkpoint; every problem is one :class:`SnnctlError` line."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SnnctlError(f"{source}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="np") as reader:
            metadata = reader.metadata() or {}
            config, class_names, version = _check_header(metadata, reader, source)
            wanted = set(_expected(config, len(class_names))) | set(WINDOW_KEYS)
            arrays = {name: reader.get_tensor(name) for name in reader.keys() if name in wanted}
    except SafetensorError as exc:
        raise SnnctlError(f"{source}: not a readable safetensors file ({exc})") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise SnnctlError(f"{source}: cannot read checkpoint ({exc})") from None
    for name in config.tensor_shapes():
        if not np.isfinite(arrays[name]).all():
            raise SnnctlError(f"{source}: tensor {name!r} holds NaN or infinite values")
    if "labels.assignments" in arrays:
        assignments = arrays["labels.assignments"]
        if len(assignments) and (assignments.min() < -1 or assignments.max() >= len(class_names)):
            raise SnnctlError(f"{source}: labels.assignments holds classes outside 0..{len(class_names) - 1}")
    return StoredCheckpoint(
        config=config,
        class_names=class_names,
        arrays=arrays,
        progress=Progress(
            samples_seen=_int_meta(metadata, "samples_seen", source),
            epoch=_int_meta(metadata, "epoch", source),
            position=_int_meta(metadata, "position", source),
            finished=bool(_json_meta(metadata, "finished", source)),
        ),
        info=_json_meta(metadata, "info", source, default={}),
        created=metadata.get("created", ""),
        versions=_json_meta(metadata, "versions", source, default={}),
        format_version=version,
    )


def load(path: str | Path) -> Checkpoint:
    """The checkpoint at ``path`` as torch tensors, ready to run (see :func:`read`)."""
    import torch

    from snnctl import network as net
    from snnctl.labels import LabelState

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
    class_names = _json_meta(metadata, "class_names", source)
    if not isinstance(class_names, list) or len(class_names) != config.n_classes:
        raise SnnctlError(f"{source}: class_names must list {config.n_classes} names (n_classes)")
    expected = _expected(config, len(class_names))
    present = set(reader.keys())
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
    if "train.window_counts" in present:
        rows, width = (list(reader.get_slice("train.window_counts").get_shape()) + [0, 0])[:2]
        if width != config.n_neurons or rows > config.update_interval + config.batch_size:
            raise SnnctlError(f"{source}: tensor 'train.window_counts' has shape {[rows, width]}, too large for the stored parameters")
    return config, [str(c) for c in class_names], version
