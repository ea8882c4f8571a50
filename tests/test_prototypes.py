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


def test_neighbours_vote_by_majority_of_the_most_similar_rows_ties_going_to_the_nearest():
    module = bench_module("prototypes")
    angles = np.array([0.0, 0.1, 0.2, 1.0, 1.1])  # rows on the unit circle
    fit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    fit_labels = np.array([2, 1, 1, 0, 0])
    held = np.array([[1.0, 0.0]])  # nearest: 2, then 1, 1, then 0, 0
    accuracies = {label: module.neighbour_accuracies(fit, fit_labels, held, np.array([label]), 3, ks=(1, 2, 3, 5))
                  for label in (2, 1)}
    assert accuracies[2] == {1: 1.0, 2: 1.0, 3: 0.0, 5: 0.0}  # k=2: a tie, the nearest's class 2
    assert accuracies[1] == {1: 0.0, 2: 0.0, 3: 1.0, 5: 1.0}  # k=5: classes 1 and 0 tie at two, 1 is nearer


def test_neighbours_agree_with_scikit_learns_cosine_classifier():
    from sklearn.neighbors import KNeighborsClassifier

    module = bench_module("prototypes")
    rng = np.random.default_rng(0)
    # two classes, odd k: no ties, which scikit-learn breaks towards the lowest class
    rows = module.unit_rows(rng.random((260, 12)) + np.repeat(np.eye(2, 12) * 0.6, 130, axis=0))
    labels = np.repeat(np.arange(2), 130)
    fit, held, fit_labels, held_labels = rows[::2], rows[1::2], labels[::2], labels[1::2]
    ours = module.neighbour_accuracies(fit, fit_labels, held, held_labels, 2, ks=(1, 3), chunk=7)
    assert 0.6 < ours[1] < 1.0
    for k in (1, 3):
        theirs = KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(fit, fit_labels).score(held, held_labels)
        assert ours[k] == pytest.approx(theirs)


def test_neighbours_over_a_random_part_of_the_fitted_images(tmp_path):
    """--keep N: one row per N, its prototypes N of the fitted images; all of them give the
    full-set row; N beyond the fitted images is one error line naming it."""
    command = [sys.executable, str(SCRIPT), str(ROOT / "parameters" / "mnist.yaml"), "--set", "n_train=600",
               "--validation", "200", "--neighbours"]
    result = subprocess.run(command + ["--keep", "60", "--keep", "600"], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\| \S+mnist\.yaml \| \d+ \| ([\d,]+) \| 200 \| ([\d.% /]+) \| \d+ \|$", result.stdout,
                      re.MULTILINE)
    assert [kept for kept, _ in rows] == ["60", "600"], result.stdout
    few, all_fitted = ([float(value) for value in re.findall(r"([\d.]+)%", shown)] for _, shown in rows)
    assert max(few) < min(all_fitted)  # ten times the labelled images: a better vote at every k
    whole = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert re.search(rf"\| 600 \| 200 \| {re.escape(rows[1][1])} \|", whole.stdout), whole.stdout
    too_many = subprocess.run(command + ["--keep", "601"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert too_many.returncode != 0
    assert too_many.stderr.strip().splitlines()[-1] == ("error: --keep 601: between 1 and the 600 fitted images of "
                                                         f"{ROOT / 'parameters' / 'mnist.yaml'}")
