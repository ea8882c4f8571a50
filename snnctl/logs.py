"""A training run's TensorBoard log, with its parameters saved beside it."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from snnctl import config as cfg
from snnctl.config import Config
from snnctl.data.encodings import input_planes
from snnctl.errors import SnnctlError


def receptive_field_grid(weights: torch.Tensor, input_size: int) -> torch.Tensor:
    """Input weights [n_inputs, n_neurons] as one image: a square grid of tiles, each
    ``input_size`` high and ``channels x input_size`` wide (ON and OFF side by side)."""
    n_neurons = weights.shape[1]
    side = int(torch.ceil(torch.sqrt(torch.tensor(float(n_neurons)))))
    planes = input_planes(weights.t(), input_size)
    height, width = planes.shape[1:]
    tiles = torch.zeros(side * side, height, width)
    tiles[:n_neurons] = planes
    grid = tiles.reshape(side, side, height, width).permute(0, 2, 1, 3)
    return grid.reshape(side * height, side * width)


def colormap_png(image: torch.Tensor, colormap: str = "hot_r") -> bytes:
    """A [h, w] array scaled to its range and drawn through a colormap, as a PNG.

    Each pixel is the index of its color in the colormap's table, indexed as matplotlib
    indexes it (``floor(x * N)``, 1.0 in the last entry), and the PNG carries the table as
    its palette: the colors matplotlib draws, one byte a pixel instead of three, so a
    6,400-neuron grid is encoded (zlib level 3) about four times faster, and TensorBoard's
    writer, which checksums every record in pure Python, has less to read (mnist-6400.yaml's
    event file: 30.6 MB instead of 53.4 MB)."""
    import io

    from matplotlib import colormaps
    from PIL import Image

    table = colormaps[colormap]
    if table.N > 256:
        raise ValueError(f"colormap {colormap!r} has {table.N} colors; a PNG palette holds 256")
    low, high = float(image.min()), float(image.max())
    scaled = ((image - low) / (high - low) if high > low else torch.zeros_like(image)).float().numpy()
    index = np.minimum((scaled * np.float32(table.N)).astype(np.int64), table.N - 1).astype(np.uint8)
    colors = (table(np.arange(table.N))[:, :3].astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    drawn = Image.fromarray(index)
    drawn.putpalette(colors.tobytes())  # the 8-bit grey image becomes a palette image
    encoded = io.BytesIO()
    drawn.save(encoded, format="PNG", compress_level=3)
    return encoded.getvalue()


class RunLog:
    """TensorBoard event files plus parameters.txt and parameters.yaml in ``run_dir``.

    ``resumed_at``: the step (training images seen) of the checkpoint a resumed run starts
    from. TensorBoard then hides what the interrupted run logged after it, and keeps what it
    logged up to it, the checkpoint's own step included. (A run from its start finds no event
    files of the run it replaces, ``train --force``: ``snnctl.service.train`` removes them.)
    """

    def __init__(self, run_dir: Path, config: Config, resumed_at: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = Path(run_dir)
        self.config = config
        _quiet_writer_threads()
        with self._written():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "parameters.txt").write_text(cfg.dump_text(config))
            (self.run_dir / "parameters.yaml").write_text(cfg.dump_yaml(config))
            # TensorBoard hides every step from purge_step on: the checkpoint's step was
            # logged before it was saved, and the resumed run does not log it again
            purge_step = None if resumed_at is None else resumed_at + 1
            self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step)
        self._drawing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snnctl-weights-image")
        self._drawn: Future | None = None

    @contextmanager
    def _written(self) -> Iterator[None]:
        """A write to the log that fails (a full disk, a folder not writable) is one line."""
        try:
            yield
        except OSError as exc:
            raise SnnctlError(f"{self.run_dir}: TensorBoard log not written ({exc.strerror or exc})") from None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        try:
            self.close()
        except SnnctlError:
            if exc_type is None:
                raise  # else the error that ended the run is the one to report

    def scalars(self, step: int, values: dict[str, float]) -> None:
        with self._written():
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)

    def weights(self, step: int, weights: torch.Tensor) -> None:
        """The receptive fields (:func:`receptive_field_grid`), colored, as image "weights",
        drawn from a copy of ``weights`` taken now, on a thread of its own while training
        goes on: a 6,400-neuron grid takes about a second. One at a time, in order; closing
        the log waits for the last, and a failed one is the log's error there at the latest."""
        self._wait_for_drawing()
        self._drawn = self._drawing.submit(self._draw_weights, step, weights.detach().cpu().clone())

    def _draw_weights(self, step: int, weights: torch.Tensor) -> None:
        self.image("weights", colormap_png(receptive_field_grid(weights, self.config.field_size)), step)

    def _wait_for_drawing(self) -> None:
        drawn, self._drawn = self._drawn, None
        if drawn is not None:
            drawn.result()

    def image(self, tag: str, png: bytes, step: int) -> None:
        """A PNG image as a TensorBoard image, stored as it is (SummaryWriter.add_image
        would decode it and encode it again)."""
        import io

        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        with Image.open(io.BytesIO(png)) as header:  # reads the size and mode, not the pixels
            # a palette image is drawn in RGB
            (width, height), channels = header.size, 3 if header.mode == "P" else len(header.getbands())
        image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
        with self._written():
            self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def hparams(self, metrics: dict[str, float]) -> None:
        params = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                  for k, v in self.config.to_dict().items()}
        with self._written():
            self.writer.add_hparams(params, metrics, run_name=".")

    def close(self) -> None:
        try:
            self._wait_for_drawing()
        finally:
            self._drawing.shutdown()
            with self._written():
                self.writer.close()


def _quiet_writer_threads() -> None:
    """TensorBoard's writer thread re-raises a failed write (a full disk), and Python prints
    that thread's traceback; the same error reaches the run at its next write to the log,
    where it becomes one line. Installed once, on top of whatever hook was there."""
    previous = threading.excepthook
    if getattr(previous, "quiet_writer_threads", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError)):
            previous(args)

    hook.quiet_writer_threads = True  # type: ignore[attr-defined]
    threading.excepthook = hook
