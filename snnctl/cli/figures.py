"""``snnctl visualize FIGURE``: one subcommand per figure, each drawn by ``service.visualize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

import snnctl.cli.render as render
from snnctl.cli.options import DeviceOption, ForceOption, JsonOption, value


class FigureGroup(TyperGroup):
    """``snnctl visualize``: an unknown figure is one error line (exit 2), not click's usage panel."""

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            render.error(f"visualize: no figure {args[0]!r}, choose one of {', '.join(self.commands)}")
            raise typer.Exit(2)
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=FigureGroup, help="Draw what a network learned (weights, assignments, theta, ...).",
                  no_args_is_help=True)

SourceArgument = Annotated[Path, typer.Argument(
    help="A checkpoint (.safetensors), or a run directory holding checkpoint.safetensors.")]
FigureOutput = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Image file, .png, .svg or .pdf (default: CKPT-FIGURE.png next to the checkpoint).")]


def _draw(what: str, source: Path, output: Optional[Path], force: bool, as_json: bool, **options) -> None:
    """Draw one figure; print the file written (or the JSON result) on stdout."""

    def call(on_progress):
        from snnctl import service

        return service.visualize(what, source, output, force, notice=render.notice, on_progress=on_progress,
                                 **options)

    render.run(call, lambda result: [result.output], as_json)


@app.command("weights", epilog=render.examples("snnctl visualize weights logs/MNIST/run1",
                                               "snnctl visualize weights CKPT -o weights.svg --titles"))
def weights(
    source: SourceArgument,
    output: FigureOutput = None,
    titles: Annotated[bool, typer.Option("--titles", help="Write each neuron's assigned class on its tile.")] = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Every excitatory neuron's input weights as a tile, in a square grid (colormap hot_r)."""
    _draw("weights", source, output, force, as_json, titles=titles)


@app.command("assignments", epilog=render.examples("snnctl visualize assignments logs/MNIST/run1",
                                                   "snnctl visualize assignments CKPT -o classes.pdf"))
def assignments(source: SourceArgument, output: FigureOutput = None, force: ForceOption = False,
                as_json: JsonOption = False) -> None:
    """The neurons colored by the class each stands for, and how many neurons each class has."""
    _draw("assignments", source, output, force, as_json)


@app.command("theta", epilog=render.examples("snnctl visualize theta logs/MNIST/run1 -o theta.png"))
def theta(source: SourceArgument, output: FigureOutput = None, force: ForceOption = False,
          as_json: JsonOption = False) -> None:
    """The adaptive thresholds (theta) as a neuron grid and a histogram."""
    _draw("theta", source, output, force, as_json)


@app.command("confusion", epilog=render.examples("snnctl visualize confusion logs/MNIST/run1",
                                                 "snnctl visualize confusion CKPT -o confusion.svg --device cpu"))
def confusion(source: SourceArgument, output: FigureOutput = None, device: DeviceOption = None,
              force: ForceOption = False, as_json: JsonOption = False) -> None:
    """The confusion matrix (counts and row-normalized) on the checkpoint's held-out test images."""
    _draw("confusion", source, output, force, as_json, device=value(device))


@app.command("spikes", epilog=render.examples("snnctl visualize spikes logs/MNIST/run1 --index 7",
                                              "snnctl visualize spikes CKPT --index 0 -o spikes.pdf"))
def spikes(
    source: SourceArgument,
    index: Annotated[int, typer.Option("--index", help="Which held-out test image (0 = the first).")] = 0,
    output: FigureOutput = None,
    device: DeviceOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """One test image, its Poisson input raster and the excitatory raster, with predicted and true class."""
    _draw("spikes", source, output, force, as_json, index=index, device=value(device))


@app.command("curves", epilog=render.examples("snnctl visualize curves logs/MNIST/run1 -o curves.png"))
def curves(source: SourceArgument, output: FigureOutput = None, force: ForceOption = False,
           as_json: JsonOption = False) -> None:
    """A run's running-accuracy and throughput curves, from its TensorBoard event files."""
    _draw("curves", source, output, force, as_json)
