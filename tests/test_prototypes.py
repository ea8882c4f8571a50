"""bench/prototypes.py: k-means with as many centroids as neurons, the reference the vote
is compared with on a sweep's validation split."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import bench_module

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "prototypes.py"


@pytest.mark.parametrize("encoding", ["rate", "on-off"])
def test_prints_the_validation_accuracy_of_kmeans_with_as_many_centroids_as_neurons(encoding):
    """On the network's input as the loaders encode it: ON/OFF images are clustered as
    encoded once (encoded twice, the rows doubled and no longer matched their labels)."""
    result = subprocess.run([sys.executable, str(SCRIPT), str(ROOT / "parameters" / "mnist.yaml"),
                             "--set", "n_train=600", "--set", "n_neurons=30", "--set", f"encoding={encoding}",
                             "--validation", "200"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    row = re.search(r"^\| \S+mnist\.yaml \| 30 \| 600 \| 200 \| ([\d.]+)% \| \d+ \|$", result.stdout, re.MULTILINE)
    assert row, result.stdout
    assert 50.0 < float(row.group(1)) <= 100.0  # 30 prototypes of handwritten digits: far above chance


def test_a_layer_of_windows_is_refused_naming_the_file_and_key(tmp_path):
    params = tmp_path / "windows.yaml"
    params.write_text("task: MNIST\nn_neurons: 10\npatch_size: 12\n")
    result = subprocess.run([sys.executable, str(SCRIPT), str(params)], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"error: {params}: patch_size 12: the neurons see windows, not "
                                                  f"whole images; this reference is for whole-image fields"]


def test_centroids_are_named_by_their_members_majority_and_images_scaled_to_unit_length():
    module = bench_module("prototypes")
    named = module.majority_labels(np.array([0, 0, 0, 2, 2]), np.array([1, 1, 3, 0, 0]), 4, 5)
    assert named.tolist() == [1, -1, 0, -1]  # clusters 1 and 3 have no member
    rows = module.unit_rows(np.array([[[3.0, 4.0]], [[0.0, 0.0]]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
