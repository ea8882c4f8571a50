"""``export``: a checkpoint's network in another format (:mod:`snnctl.export`, docs/export.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snnctl import checkpoint as ckpt
from snnctl.files import write_atomic
from snnctl.nir_options import NirOptions
from snnctl.service.common import Result, check_output


@dataclass
class ExportResult(Result):
    checkpoint: str
    format: str
    output: str
    bytes: int
    tensors: list[str]  # the checkpoint tensors the file holds
    not_carried: list[str]  # what the format cannot hold (see docs/export.md)


def export(checkpoint_path: Path, fmt: str, output: Path, force: bool = False,
           nir: NirOptions = NirOptions()) -> ExportResult:
    """Write a checkpoint's network in another format: npz, torch, bindsnet or nir
    (:mod:`snnctl.export`, docs/export.md); ``nir`` shapes a NIR graph for one consumer
    (:func:`snnctl.nir_options.nir_options`: a preset with changes)."""
    from snnctl import export as formats

    formats.check_format(fmt)
    output = Path(output)
    checkpoint_path = ckpt.locate(checkpoint_path)
    check_output(output, force, reads=checkpoint_path)
    exported = formats.export(ckpt.load(checkpoint_path), fmt, nir=nir)
    write_atomic(output, exported.data)
    return ExportResult(str(checkpoint_path), fmt, str(output), len(exported.data), exported.tensors, exported.notes)
