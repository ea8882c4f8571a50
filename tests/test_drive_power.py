"""bench/drive_power.py: the drive's power chosen on a validation split of a checkpoint's
training images (how the square of ``readout_features: drive`` was chosen)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from snnctl import service

from conftest import bench_module, tiny_config

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "drive_power.py"


def test_drive_power_prints_a_validation_row_per_shift_copies_power_and_strength(tmp_path):
    run = service.train(tiny_config(tmp_path, name="layer", n_train=300, n_test=50, n_neurons=20, time=40,
                                    update_interval=100, baseline=False))
    result = subprocess.run([sys.executable, str(SCRIPT), str(run.checkpoint), "--validation", "100",
                             "--powers", "1", "2", "--c", "0.1", "1", "--shifts", "0", "1", "--augment", "0", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    fit, held = (int(n.replace(",", "")) for n in re.search(
        r"20 neurons \(learned fields\), fit on ([\d,]+) training images, validated on ([\d,]+) others", result.stdout).groups())
    assert fit + held == 300 and abs(held - 100) <= 1  # the run's training images (n_train), no test image
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+)% \|", result.stdout, re.MULTILINE)
    assert [(shift, copies, power, c) for shift, copies, power, c, _ in rows] == [
        (shift, copies, power, c) for shift in ("0", "1") for copies in ("0", "1") for power in ("1", "2")
        for c in ("0.1", "1")]
    assert all(0.0 <= float(accuracy) <= 100.0 for *_, accuracy in rows)


def test_exemplar_fields_are_training_images_of_the_fit_part_scaled_to_the_learned_sums():
    import numpy as np

    module = bench_module("drive_power")
    rng = np.random.default_rng(0)
    images = rng.random((50, 16), dtype=np.float32)
    learned = rng.random((16, 6), dtype=np.float32)
    fit = np.arange(10, 50)
    fields = module.exemplar_fields(images, fit, learned, seed=3)
    assert fields.shape == learned.shape
    np.testing.assert_allclose(fields.sum(axis=0), learned.sum(axis=0), rtol=1e-5)
    drawn = [int(np.argmin(np.abs(images / images.sum(1, keepdims=True) - column / column.sum()).sum(1)))
             for column in fields.T]
    assert len(set(drawn)) == 6 and all(row in fit for row in drawn)  # distinct images, none held out
    assert np.array_equal(fields, module.exemplar_fields(images, fit, learned, seed=3))
