"""The untrained-layer control of a finished study: did STDP add anything to its readout?

For each fold, ``snnctl assign CHECKPOINT --readout linear --untrained`` reads out the
layer training started from (the weights its seed draws) exactly as the fold's trained
layer was read out: the same training images, features, class weights and L2 strength
chosen the same way, scored on the same held-out images. The script prints each fold's
linear readout, trained and untrained, the mean +- sd and the 95% t-interval of the
paired difference. Where that interval includes 0, the study's figure cannot be credited
to the spiking network's learning (docs/mammo.md, "Is it the learning?").

    python bench/control.py logs/MAMMO/study-20261202-164345-4a849b

Each fold's control is written beside its checkpoint
(checkpoint.TASK-linear-FEATURES-untrained.safetensors; ``snnctl evaluate`` reads it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from snnctl import service
from snnctl.errors import SnnctlError
from snnctl.service.studies import readout_key, summarize


def control(study_dir: Path) -> list[tuple[int, float, float]]:
    """(fold, trained, untrained) linear readout balanced accuracy of each fold of the study."""
    result_file = study_dir / "result.json"
    if not result_file.is_file():
        raise SnnctlError(f"{study_dir}: no result.json; finish the study first (snnctl train --resume {study_dir})")
    rows = []
    for fold in json.loads(result_file.read_text())["per_fold"]:
        trained = fold["metrics"].get(readout_key("linear"))
        if trained is None:
            raise SnnctlError(f"{study_dir}: fold {fold['fold']} has no linear readout to compare with")
        untrained = service.assign(Path(fold["checkpoint"]), readout="linear", untrained=True, force=True)
        rows.append((fold["fold"], trained, untrained.scores.linear.balanced_accuracy))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path, help="a finished study's directory (snnctl train --folds K)")
    rows = control(parser.parse_args().study_dir)
    print("fold  trained  untrained  difference")
    for fold, trained, untrained in rows:
        print(f"{fold:>4}  {trained:7.3f}  {untrained:9.3f}  {trained - untrained:+10.3f}")
    for name, values in (("trained", [r[1] for r in rows]), ("untrained", [r[2] for r in rows])):
        summary = summarize(values)
        print(f"{name}: {summary.mean:.3f} +- {summary.sd:.3f}")
    difference = summarize([trained - untrained for _, trained, untrained in rows])
    reading = (" (below 0: the untrained layer reads out better)" if difference.high < 0
               else " (includes 0: no gain from learning shown)" if difference.low <= 0 else "")
    print(f"trained minus untrained: {difference.mean:+.3f}, 95% interval {difference.low:+.3f} to "
          f"{difference.high:+.3f}{reading}")


if __name__ == "__main__":
    main()
