"""Which power of the input drive the linear readout should read, on a validation split.

    python bench/drive_power.py CKPT                          # powers 1, 2, 3; C 0.1 and 1
    python bench/drive_power.py CKPT --powers 1 2 --c 0.1 1 --data-dir ../shared/data
    python bench/drive_power.py CKPT --validation 10000       # images held out of the training split
    python bench/drive_power.py CKPT --fields exemplars       # random training images in place of the fields
    python bench/drive_power.py CKPT --powers 2 --shifts 0 1 2  # the drive of the image shifted (readout_shift)
    python bench/drive_power.py CKPT --powers 2 --shifts 2 --augment 0 1 2  # distorted copies (readout_augment)

Reads a trained layer's input weights from CKPT, computes the drive of its task's
training images (n_train of them; ``snnctl.service.readouts.image_drive``: ``max(0, d - mean(d))``), and,
for each power p and each L2 strength C, fits a logistic regression on the standardized
``f ** p`` of all training images but a seeded, class-stratified validation part, and
scores it on that part. With ``--augment N`` the fit part also has N distorted copies of
each of its images (``readout_augment``; the validation part none). The test images are
never read. This is how the square of ``readout_features: drive`` (transform
``square-standardize``), ``readout_shift`` and ``readout_augment`` were chosen
(docs/readout.md). Prints one row per shift, number of copies, power and C: the
validation accuracy, the solver's iterations, seconds.

``--fields exemplars`` asks what STDP adds to this readout: the learned receptive fields
are replaced by as many training images drawn (seeded) from the fit part, each scaled to
the sum of the learned field it replaces, and read the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnctl import checkpoint as ckpt  # noqa: E402
from snnctl import data  # noqa: E402
from snnctl.seeds import readout_seed  # noqa: E402
from snnctl.service import readouts  # noqa: E402


def validation_accuracy(features: np.ndarray, labels: np.ndarray, fit: np.ndarray, held: np.ndarray,
                        c: float) -> tuple[float, int]:
    """Accuracy on ``held`` of a logistic regression fitted on the standardized ``fit`` rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(features[fit], labels[fit])
    accuracy = float((model.predict(features[held]) == labels[held]).mean())
    return accuracy, int(model.named_steps["logisticregression"].n_iter_.max())


def exemplar_fields(images: np.ndarray, fit: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """``weights.shape[1]`` images drawn from the ``fit`` rows without replacement [inputs,
    neurons], each scaled to the sum of the learned field it stands in for."""
    rows = np.random.default_rng(seed).choice(fit, size=weights.shape[1], replace=False)
    fields = images[rows].T.astype(np.float32)
    return fields * (weights.sum(axis=0) / np.maximum(fields.sum(axis=0), 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by snnctl train")
    parser.add_argument("--powers", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--c", type=float, nargs="+", default=[0.1, 1.0], help="L2 strengths (sklearn's C)")
    parser.add_argument("--validation", type=int, default=10000, help="training images held out (default 10,000)")
    parser.add_argument("--data-dir", help="the task's data (default: the checkpoint's data_dir)")
    parser.add_argument("--fields", choices=("learned", "exemplars"), default="learned",
                        help="the checkpoint's learned fields, or as many training images of the fit part")
    parser.add_argument("--shifts", type=int, nargs="+", default=[0],
                        help="readout_shift: each neuron's largest drive over the image shifted by up to this many pixels")
    parser.add_argument("--augment", type=int, nargs="+", default=[0],
                        help="readout_augment: distorted copies of each fit image the regression also sees")
    args = parser.parse_args()
    stored = ckpt.load(args.checkpoint)
    config = stored.config if args.data_dir is None else stored.config.replace(data_dir=args.data_dir)
    train = data.load_splits(config, lambda notice: print(notice, file=sys.stderr)).train
    fit, held = (part.numpy() for part in data.stratified_split(train.labels, args.validation,
                                                                 readout_seed(config.seed)))
    weights = stored.tensors.weights.numpy()
    if args.fields == "exemplars":
        weights = exemplar_fields(train.images.numpy(), fit, weights, readout_seed(config.seed))
    labels = train.labels.numpy()
    print(f"{args.checkpoint}: {config.n_neurons} neurons ({args.fields} fields), fit on {len(fit):,} training "
          f"images, validated on {len(held):,} others")
    print("| shift | copies | power | C | validation accuracy | iterations | seconds |")
    print("|---|---|---|---|---|---|---|")
    for shift in args.shifts:
        shifted = config.replace(readout_features="drive", readout_shift=shift)
        drive = readouts.image_drive(shifted, torch.from_numpy(weights), train.images).numpy()
        for copies in args.augment:
            fit_images, fit_labels, _ = readouts.with_distorted_copies(
                shifted.replace(readout_augment=copies), train.images[fit], train.labels[fit], None)
            copied = (readouts.image_drive(shifted, torch.from_numpy(weights), fit_images[len(fit):]).numpy()
                      if copies else np.empty((0, drive.shape[1]), drive.dtype))
            # rows: the training images, then the copies of the fit part's
            rows = np.concatenate([drive, copied])
            rows_labels = np.concatenate([labels, fit_labels[len(fit):].numpy()])
            rows_fit = np.concatenate([fit, len(labels) + np.arange(len(copied))])
            for power in args.powers:
                features = rows ** power
                for c in args.c:
                    started = time.perf_counter()
                    accuracy, iterations = validation_accuracy(features, rows_labels, rows_fit, held, c)
                    print(f"| {shift} | {copies} | {power:g} | {c:g} | {100 * accuracy:.2f}% | {iterations} | "
                          f"{time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
