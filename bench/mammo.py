"""Write a synthetic mammogram-like data set (snnctl.data.synthetic) for studies and benchmarks.

    python bench/mammo.py data/synthetic-mammo                  # 100 patients, 128 x 128, mixed 8/16 bits
    python bench/mammo.py data/m --patients 300 --seed 2 --contrast 0.2

Then, for example:

    snnctl train parameters/mammo.yaml --set data_dir=data/synthetic-mammo --set n_classes=3 --set input_size=64

Prints the number of images per class.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnctl.data import synthetic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder to write (class folders inside)")
    defaults = synthetic.SyntheticMammoSpec()
    parser.add_argument("--patients", type=int, default=defaults.patients)
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument("--contrast", type=float, default=defaults.contrast)
    parser.add_argument("--bits", type=int, choices=(0, 8, 16), default=defaults.bits, help="0: a mix of 8 and 16")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    if args.root.exists() and any(args.root.iterdir()):
        parser.error(f"{args.root}: exists and is not empty")
    spec = synthetic.SyntheticMammoSpec(patients=args.patients, size=args.size, contrast=args.contrast,
                                        bits=args.bits, seed=args.seed)
    counts = synthetic.write_folders(args.root, spec)
    print(", ".join(f"{name}: {count}" for name, count in counts.items()), f"images in {args.root}")


if __name__ == "__main__":
    main()
