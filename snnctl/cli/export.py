"""``snnctl export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import snnctl.cli.render as render
from snnctl.cli.options import CheckpointArgument, ForceOption, JsonOption

EPILOG = render.examples(
    "snnctl export CKPT --format npz -o network.npz",
    "snnctl export CKPT --format torch -o state.pt",
    "snnctl export logs/MNIST/run1/checkpoint.safetensors --format nir -o network.nir --force",
    note="Formats: npz (every tensor + metadata JSON), torch (tensors-only state dict), bindsnet "
         "(a BindsNET Network for bindsnet.network.load), nir (Neuromorphic Intermediate Representation). "
         "See docs/export.md.")


def export(
    checkpoint: CheckpointArgument,
    fmt: Annotated[str, typer.Option("--format", "-f", help="npz, torch, bindsnet or nir.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write a trained network to another format (npz, torch, bindsnet, nir)."""

    def call(on_progress):
        from snnctl import service

        return service.export(checkpoint, fmt, output, force)

    render.run(call, _table, as_json)


def _table(result) -> render.Rendering:
    return [render.key_values(f"Exported {result.checkpoint}", [
        ("format", result.format),
        ("file", f"{result.output} ({result.bytes} bytes)"),
        ("tensors", ", ".join(result.tensors)),
        *[("not carried", note) for note in result.not_carried],
    ])]
