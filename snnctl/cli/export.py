"""``snnctl export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

import snnctl.cli.render as render
from snnctl.cli.options import (CheckpointArgument, DebugOption, ForceOption, JsonOption, LogDirOption, NirDelays,
                                NirPreset, NirR, NirThreshold, NirTimeUnit, NirVoltageZero, value)
from snnctl.errors import ConfigError

EPILOG = render.examples(
    "snnctl export CKPT --format npz -o network.npz",
    "snnctl export CKPT --format torch -o state.pt",
    "snnctl export logs/MNIST/run1/checkpoint.safetensors --format nir -o network.nir --force",
    "snnctl export CKPT --format nir --nir-for snntorch -o network.nir",
    note="Formats: npz (every tensor + metadata JSON), torch (tensors-only state dict), bindsnet "
         "(a BindsNET Network for bindsnet.network.load), nir (Neuromorphic Intermediate Representation: "
         "--nir-for picks the tool that runs it, the other --nir-* options change one setting of that "
         "preset). See docs/export.md.")


def _nir_option(flag: str, help: str):
    """An option of the NIR graph (snnctl.nir_options.NirOptions), shown in its own help panel."""
    return typer.Option(flag, help=help, rich_help_panel="NIR options (--format nir)")


def export(
    checkpoint: CheckpointArgument = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="npz, torch, bindsnet or nir.")] = ...,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")] = ...,
    force: ForceOption = False,
    log_dir: LogDirOption = None,
    nir_for: Annotated[Optional[NirPreset], _nir_option(
        "--nir-for", "The tool that runs the graph: norse (default), snntorch, or delays (a simulator of NIR Delay "
                     "nodes).")] = None,
    nir_time_unit: Annotated[Optional[NirTimeUnit], _nir_option(
        "--nir-time-unit", "Unit of time constants and delays.")] = None,
    nir_step: Annotated[Optional[float], _nir_option(
        "--nir-step", "The tool's time step in that unit (default: the network's dt).")] = None,
    nir_delays: Annotated[Optional[NirDelays], _nir_option(
        "--nir-delays", "implicit: a loop reads the previous step; explicit: a Delay node wherever BindsNET waits "
                        "a step.")] = None,
    nir_voltage_zero: Annotated[Optional[NirVoltageZero], _nir_option(
        "--nir-voltage-zero", "Voltages measured from each layer's reset or resting potential.")] = None,
    nir_threshold: Annotated[Optional[NirThreshold], _nir_option(
        "--nir-threshold", "per-neuron thresholds in mV, or one: every neuron's voltages scaled so its threshold "
                           "is 1.")] = None,
    nir_r: Annotated[Optional[NirR], _nir_option(
        "--nir-r", "one: the weights carry tau/dt; tau/dt: r does and the weights are BindsNET's.")] = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Write a trained network to another format (npz, torch, bindsnet, nir)."""
    changes = {"time_unit": value(nir_time_unit), "step": nir_step, "delays": value(nir_delays),
               "voltage_zero": value(nir_voltage_zero), "threshold": value(nir_threshold), "r": value(nir_r)}

    def call(on_progress):
        from snnctl import service
        from snnctl.nir_options import nir_options

        given = [f"--nir-{name.replace('_', '-')}" for name, change in {"for": nir_for, **changes}.items()
                 if change is not None]
        if given and fmt != "nir":
            raise ConfigError(f"export: {', '.join(given)}: for --format nir only, not {fmt!r}")
        options = nir_options(value(nir_for) or "norse", **changes)
        return service.export(service.checkpoint_or_latest(checkpoint, log_dir, render.notice), fmt, output, force,
                              nir=options)

    render.run(call, _table, as_json)


def _table(result) -> render.Rendering:
    return [render.key_values(f"Exported {result.checkpoint}", [
        ("format", result.format),
        ("file", f"{result.output} ({result.bytes} bytes)"),
        ("tensors", ", ".join(result.tensors)),
        *[("not carried", note) for note in result.not_carried],
    ])]
