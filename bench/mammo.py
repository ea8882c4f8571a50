"""Write a synthetic mammogram-like data set (snnctl.data.synthetic) for studies and benchmarks,
and, with --train, train on it and compare the vote, the linear readout and the pixel baseline.

    python bench/mammo.py data/synthetic-mammo                  # 60 patients, 128 x 128, mixed 8/16 bits
    python bench/mammo.py data/m --patients 300 --seed 2 --contrast 0.2
    python bench/mammo.py data/p --patients 100 --patches     # patches of tissue around the finding
    python bench/mammo.py data/e --patients 100 --patches --exposure 1   # films exposed differently
    python bench/mammo.py data/d --patients 100 --patches --bits 12      # 12-bit values in 16-bit files
    python bench/mammo.py data/s --patients 100 --patches --shapes       # patches of varied shapes, not squares
    python bench/mammo.py data/m --patients 300 --train         # then train (an existing set is reused)

--train runs parameters/mnist.yaml's network (225 neurons, one image at a time, the
winner rule) on the folders, 64 x 64 pixels, three classes, class-balanced batches and a
class-weighted readout (balance: true); --set changes any parameter. It prints each
readout's balanced accuracy and AUC with their 95% bootstrap intervals on the held-out
patients' images.

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

from snnctl import config as cfg  # noqa: E402
from snnctl import service  # noqa: E402
from snnctl.data import synthetic  # noqa: E402

TRAIN_SETTINGS = ["task=MAMMO", "n_classes=3", "input_size=64", "balance=true", "name=null"]


def train(root: Path, extra: list[str]) -> None:
    """Train on the folders at ``root`` and print every readout's scores."""
    import tempfile

    config = cfg.load(ROOT / "parameters" / "mnist.yaml", [f"data_dir={root}", *TRAIN_SETTINGS, *extra])
    with tempfile.TemporaryDirectory() as out:
        result = service.train(config, out=Path(out) / "run", notice=lambda message: print(message, file=sys.stderr))
    scores = result.scores
    print(f"{result.n_train} training / {result.n_test} test images, {config.n_neurons} neurons, "
          f"{result.epochs} epoch(s); chance {scores.chance:.3f}")
    for name in ("vote", "linear", "baseline"):
        report = getattr(scores, name)
        if report is None:
            continue
        (low, high), auc = report.intervals["balanced_accuracy"], report.intervals["auc"]
        print(f"{name:>8}: balanced accuracy {report.balanced_accuracy:.3f} [{low:.3f}, {high:.3f}], "
              f"AUC {report.auc:.3f} [{auc[0]:.3f}, {auc[1]:.3f}], recall "
              + ", ".join(f"{c} {r:.2f}" for c, r in report.recall.items()))
    if scores.verdict:
        print(scores.verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder to write (class folders inside)")
    defaults = synthetic.SyntheticMammoSpec()
    parser.add_argument("--patients", type=int, default=defaults.patients)
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument("--contrast", type=float, default=defaults.contrast)
    parser.add_argument("--bits", type=int, choices=(0, 8, 12, 14, 16), default=defaults.bits,
                        help="0: a mix of 8 and 16; 12 or 14: 16-bit files holding 12- or 14-bit values")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--patches", action="store_true", help="patches of tissue around the finding, not whole views")
    parser.add_argument("--exposure", type=float, default=defaults.exposure,
                        help="how much films differ in brightness and contrast (0: alike, 1: as real sites do)")
    parser.add_argument("--shapes", action="store_true",
                        help="cut images to the shapes real sets have (views taller than wide, patches of varied "
                             "shapes) instead of squares")
    parser.add_argument("--train", action="store_true", help="then train on it and compare the readouts")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for the training run (repeatable)")
    args = parser.parse_args()
    exists = args.root.exists() and any(args.root.iterdir())
    if exists and not args.train:
        parser.error(f"{args.root}: exists and is not empty")
    if not exists:
        spec = synthetic.SyntheticMammoSpec(patients=args.patients, size=args.size, contrast=args.contrast,
                                            bits=args.bits, seed=args.seed, patches=args.patches,
                                            exposure=args.exposure, shapes=args.shapes)
        counts = synthetic.write_folders(args.root, spec)
        print(", ".join(f"{name}: {count}" for name, count in counts.items()), f"images in {args.root}")
    if args.train:
        train(args.root, args.set)


if __name__ == "__main__":
    main()
