"""Draw what each encoding of snnctl.data.encodings makes of one synthetic mammogram:
raw gray values, squared (``gamma: 2``, as parameters/mammo-study.yaml), the percentile
window, CLAHE, and the ON and OFF channels of on-off.

    python bench/encodings_figure.py docs/images/encodings.png
    python bench/encodings_figure.py out.png --size 128 --seed 3

The image is a malignant view of snnctl.data.synthetic (a faint spiculated mass or a
cluster of calcifications in 1/f^3 tissue); docs/mammo.md shows the figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from snnctl import plots  # noqa: E402
from snnctl.config import Config  # noqa: E402
from snnctl.data import encodings, synthetic  # noqa: E402


def panels(image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(title, image in [0, 1]) for each encoding of ``image``."""
    size = image.shape[0]
    pixels = torch.from_numpy(image).float().reshape(1, -1)
    config = Config(input_size=size)
    shown = [("raw (rate)", image)]
    for title, changes in (("gamma: 2 (mammo-study)", {"gamma": 2.0}),
                           ("normalize: percentile", {"normalize": "percentile"}),
                           ("percentile + clahe", {"normalize": "percentile", "clahe": True})):
        shown.append((title, encodings.encode(pixels, config.replace(**changes)).reshape(size, size).numpy()))
    on_off = encodings.encode(pixels, config.replace(normalize="percentile", encoding="on-off"))[0]
    shown.append(("on-off: ON", on_off[:size * size].reshape(size, size).numpy()))
    shown.append(("on-off: OFF", on_off[size * size:].reshape(size, size).numpy()))
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="PNG, SVG or PDF file to write")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    spec = synthetic.SyntheticMammoSpec(size=args.size)
    image = synthetic.mammogram(np.random.default_rng(args.seed), spec, "malignant", density=0.6, left=True)
    figure = plots.gray_images([panels(image)], "one synthetic malignant view as input rates (white: the highest "
                               "rate)", cell=(2.2, 2.6))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(plots.render(figure, plots.check_suffix(args.output)))
    print(args.output)


if __name__ == "__main__":
    main()
