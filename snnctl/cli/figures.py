"""``snnctl visualize FIGURE``: one subcommand per figure, each drawn by ``service.visualize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

import snnctl.cli.completion as completion
import snnctl.cli.render as render
from snnctl.cli.options import DebugOption, DeviceOption, ForceOption, JsonOption, LogDirOption, value


class FigureGroup(render.UntypedFlags, TyperGroup):
    """``snnctl visualize``: an unknown figure is one error line (exit 2), not click's usage panel."""

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            render.failed(f"visualize: no figure {args[0]!r}, choose one of {', '.join(self.commands)}", 2,
                          render.asks_for_json(args))
            raise typer.Exit(2)
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=FigureGroup, help="Draw what a network learned (weights, assignments, theta, ...).",
                  no_args_is_help=True)

SourceArgument = Annotated[Optional[Path], typer.Argument(
    help="A checkpoint (.safetensors), or a run directory holding checkpoint.safetensors (default: the newest "
         "finished run under --log-dir).", metavar="CKPT", autocompletion=completion.checkpoints)]
FigureOutput = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Image file, .png, .svg or .pdf (default: CKPT-FIGURE.png next to the checkpoint).")]


def _draw(what: str, source: Optional[Path], output: Optional[Path], force: bool, as_json: bool,
          log_dir: Optional[Path], **options) -> None:
    """Draw one figure of ``source`` (default: the newest finished run under ``log_dir``);
    print the file written (or the JSON result) on stdout."""

    def call(on_progress):
        from snnctl import service

        checkpoint = service.checkpoint_or_latest(source, log_dir, render.notice)
        return service.visualize(what, checkpoint, output, force, notice=render.notice, on_progress=on_progress,
                                 **options)

    render.run(call, lambda result: [result.output], as_json)


@app.command("weights", epilog=render.examples("snnctl visualize weights logs/MNIST/run1",
                                               "snnctl visualize weights CKPT -o weights.svg --titles"), cls=render.Command)
def weights(
    source: SourceArgument = None,
    output: FigureOutput = None,
    titles: Annotated[bool, typer.Option("--titles", help="Write each neuron's assigned class on its tile.")] = False,
    force: ForceOption = False,
    log_dir: LogDirOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Every excitatory neuron's input weights as a tile, in a square grid (colormap hot_r)."""
    _draw("weights", source, output, force, as_json, log_dir, titles=titles)


@app.command("assignments", epilog=render.examples("snnctl visualize assignments logs/MNIST/run1",
                                                   "snnctl visualize assignments CKPT -o classes.pdf"), cls=render.Command)
def assignments(source: SourceArgument = None, output: FigureOutput = None, force: ForceOption = False,
                log_dir: LogDirOption = None, as_json: JsonOption = False, debug: DebugOption = False) -> None:
    """The neurons colored by the class each stands for, and how many neurons each class has."""
    _draw("assignments", source, output, force, as_json, log_dir)


@app.command("theta", epilog=render.examples("snnctl visualize theta logs/MNIST/run1 -o theta.png"), cls=render.Command)
def theta(source: SourceArgument = None, output: FigureOutput = None, force: ForceOption = False,
          log_dir: LogDirOption = None, as_json: JsonOption = False, debug: DebugOption = False) -> None:
    """The adaptive thresholds (theta) as a neuron grid and a histogram."""
    _draw("theta", source, output, force, as_json, log_dir)


@app.command("confusion", epilog=render.examples("snnctl visualize confusion logs/MNIST/run1",
                                                 "snnctl visualize confusion CKPT -o confusion.svg --device cpu"), cls=render.Command)
def confusion(source: SourceArgument = None, output: FigureOutput = None, device: DeviceOption = None,
              force: ForceOption = False, log_dir: LogDirOption = None, as_json: JsonOption = False,
              debug: DebugOption = False) -> None:
    """The confusion matrix (counts and row-normalized) on the checkpoint's held-out test images."""
    _draw("confusion", source, output, force, as_json, log_dir, device=value(device))


@app.command("spikes", epilog=render.examples("snnctl visualize spikes logs/MNIST/run1 --index 7",
                                              "snnctl visualize spikes CKPT --index 0 -o spikes.pdf"), cls=render.Command)
def spikes(
    source: SourceArgument = None,
    index: Annotated[int, typer.Option("--index", help="Which held-out test image (0 = the first).")] = 0,
    output: FigureOutput = None,
    device: DeviceOption = None,
    force: ForceOption = False,
    log_dir: LogDirOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """One test image, its Poisson input raster and the excitatory raster, with the true class and the class
    evaluate predicts for it (the input spikes evaluate draws for it)."""
    _draw("spikes", source, output, force, as_json, log_dir, index=index, device=value(device))


@app.command("curves", epilog=render.examples("snnctl visualize curves logs/MNIST/run1 -o curves.png"), cls=render.Command)
def curves(source: SourceArgument = None, output: FigureOutput = None, force: ForceOption = False,
           log_dir: LogDirOption = None, as_json: JsonOption = False, debug: DebugOption = False) -> None:
    """A run's running-accuracy and throughput curves, from its TensorBoard event files."""
    _draw("curves", source, output, force, as_json, log_dir)


@app.command("readout", epilog=render.examples("snnctl visualize readout logs/MNIST/run1",
                                               "snnctl visualize readout CKPT -o readout.svg"), cls=render.Command)
def readout(source: SourceArgument = None, output: FigureOutput = None, force: ForceOption = False,
            log_dir: LogDirOption = None, as_json: JsonOption = False, debug: DebugOption = False) -> None:
    """The linear readout: each class's weights over the neurons, drawn through their receptive fields."""
    _draw("readout", source, output, force, as_json, log_dir)


@app.command("roc", epilog=render.examples("snnctl visualize roc logs/MNIST/run1",
                                           "snnctl visualize roc CKPT -o roc.pdf --device cpu"), cls=render.Command)
def roc(source: SourceArgument = None, output: FigureOutput = None, device: DeviceOption = None,
        force: ForceOption = False, log_dir: LogDirOption = None, as_json: JsonOption = False,
        debug: DebugOption = False) -> None:
    """ROC curves (one vs rest) of the vote, the linear readout and the pixel baseline on the test images."""
    _draw("roc", source, output, force, as_json, log_dir, device=value(device))
