"""bench/drive_power.py: the drive's power chosen on a validation split of a checkpoint's
training images (how the square of ``readout_features: drive`` was chosen)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from snnctl import service

from conftest import tiny_config

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "drive_power.py"


def test_drive_power_prints_a_validation_row_per_power_and_strength(tmp_path):
    run = service.train(tiny_config(tmp_path, name="layer", n_train=300, n_test=50, n_neurons=20, time=40,
                                    update_interval=100, baseline=False))
    result = subprocess.run([sys.executable, str(SCRIPT), str(run.checkpoint), "--validation", "100",
                             "--powers", "1", "2", "--c", "0.1", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    fit, held = (int(n.replace(",", "")) for n in re.search(
        r"20 neurons, fit on ([\d,]+) training images, validated on ([\d,]+) others", result.stdout).groups())
    assert fit + held == 300 and abs(held - 100) <= 1  # the run's training images (n_train), no test image
    rows = re.findall(r"^\| ([\d.]+) \| ([\d.]+) \| ([\d.]+)% \|", result.stdout, re.MULTILINE)
    assert [(power, c) for power, c, _ in rows] == [("1", "0.1"), ("1", "1"), ("2", "0.1"), ("2", "1")]
    assert all(0.0 <= float(accuracy) <= 100.0 for _, _, accuracy in rows)
