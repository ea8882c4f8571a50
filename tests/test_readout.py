"""The linear readout and the scores, on data whose answer is known."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from snnctl import config as cfg

from snnctl.errors import SnnctlError
from snnctl.readout import COUNTS, PIXELS, LinearReadout, metrics
from snnctl.readout.linear import TRANSFORMS


def separable_counts(n: int, n_classes: int, seed: int, n_neurons: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts where neuron ``c`` fires much more for class ``c``, noise elsewhere."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    counts = rng.poisson(2.0, size=(n, n_neurons))
    counts[np.arange(n), labels] += 12
    return counts, labels


@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_readout_finds_classes_told_apart_by_a_few_neurons(n_classes):
    counts, labels = separable_counts(240, n_classes, seed=0)
    readout = LinearReadout.fit(counts[:180], labels[:180], n_classes, balanced=False, seed=0)
    assert readout.coef.shape == (n_classes, 30)
    assert (readout.predict(counts[180:]) == labels[180:]).mean() >= 0.98
    probabilities = readout.predict_proba(counts[180:])
    assert probabilities.shape == (60, n_classes)
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_the_fit_sees_only_the_training_rows_and_is_seeded():
    counts, labels = separable_counts(200, 3, seed=1)
    train = slice(0, 150)
    first = LinearReadout.fit(counts[train], labels[train], 3, balanced=True, seed=7)
    # poison the test rows' labels: nothing the fit returns may change
    poisoned = labels.copy()
    poisoned[150:] = np.random.default_rng(0).permutation(poisoned[150:])
    second = LinearReadout.fit(counts[train], poisoned[train], 3, balanced=True, seed=7)
    for name, array in first.to_tensors().items():
        assert np.array_equal(array, second.to_tensors()[name]), name
    assert first.C == second.C


def test_folds_on_threads_choose_the_same_c_and_weights_as_one_after_another():
    # noisy classes, so that the folds' losses differ and the choice of C is not trivial
    rng = np.random.default_rng(5)
    labels = np.arange(300) % 3
    counts = rng.poisson(3.0, size=(300, 40))
    counts[np.arange(300), labels] += rng.poisson(2.0, size=300)
    one = LinearReadout.fit(counts, labels, 3, balanced=True, seed=3, workers=1)
    threaded = LinearReadout.fit(counts, labels, 3, balanced=True, seed=3, workers=4)
    assert one.C == threaded.C
    for name, array in one.to_tensors().items():
        assert np.array_equal(array, threaded.to_tensors()[name]), name


def test_a_final_fit_cut_short_by_the_iteration_cap_is_not_converged(monkeypatch, recwarn):
    from snnctl.readout import linear

    counts, labels = separable_counts(120, 3, seed=6)
    assert LinearReadout.fit(counts, labels, 3, balanced=False, seed=0).converged
    monkeypatch.setattr(linear, "MAX_ITER", 2)
    assert not LinearReadout.fit(counts, labels, 3, balanced=False, seed=0).converged
    assert not [w for w in recwarn if "converge" in str(w.message)]


def test_a_class_with_fewer_than_two_training_images_is_named():
    counts, labels = separable_counts(60, 3, seed=2)
    labels[labels == 2] = 0
    labels[[5, 10]] = 2  # rows 0..7 hold one image of class 2, rows 0..11 two
    with pytest.raises(SnnctlError, match=r"at least 2 training images of every class.*\[4, 3, 1\]"):
        LinearReadout.fit(counts[:8], labels[:8], 3, balanced=False, seed=0)
    readout = LinearReadout.fit(counts[:12], labels[:12], 3, balanced=False, seed=0)  # two folds
    assert readout.C in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def patients_with_a_look_of_their_own(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """40 patients of 4 views each, whose features are the patient's own look (the same in
    every view, plus a little noise) and carry nothing of the class: a model that learns
    the looks predicts a patient's other views, and nobody new."""
    rng = np.random.default_rng(seed)
    patient_class = rng.permutation(np.arange(40) % 3)
    looks = rng.normal(0.0, 1.0, size=(40, 60))
    rows = np.repeat(np.arange(40), 4)
    features = looks[rows] + rng.normal(0.0, 0.1, size=(160, 60))
    return features, patient_class[rows], [f"P{p:03d}" for p in rows]


def test_with_groups_the_penalty_is_chosen_for_new_patients_not_for_other_views_of_known_ones():
    features, labels, groups = patients_with_a_look_of_their_own(seed=0)
    by_image = LinearReadout.fit(features, labels, 3, balanced=True, seed=0, transform=PIXELS)
    by_patient = LinearReadout.fit(features, labels, 3, balanced=True, seed=0, transform=PIXELS, groups=groups)
    # folds that hold out single views reward memorizing the patients: the weakest penalty wins;
    # folds that hold out whole patients find nothing to learn: the strongest one wins
    assert by_image.C >= 1.0
    assert by_patient.C == 1e-3


def test_groups_of_the_folds_that_choose_the_penalty_are_never_split(monkeypatch):
    from snnctl.readout import linear

    features, labels, groups = patients_with_a_look_of_their_own(seed=1)
    held_out: list[set[str]] = []
    fold_losses = linear._fold_losses

    def recording(x, y, fit_rows, held_rows, *rest):
        held_out.append({groups[i] for i in held_rows})
        assert held_out[-1].isdisjoint({groups[i] for i in fit_rows})
        return fold_losses(x, y, fit_rows, held_rows, *rest)

    monkeypatch.setattr(linear, "_fold_losses", recording)
    LinearReadout.fit(features, labels, 3, balanced=False, seed=0, transform=PIXELS, groups=groups)
    assert len(held_out) == 5 and set().union(*held_out) == set(groups)


def test_a_class_of_one_group_falls_back_to_folds_of_single_images_and_the_run_says_so(tmp_path):
    from snnctl.service import readouts

    features, labels, groups = patients_with_a_look_of_their_own(seed=2)
    assert LinearReadout.fit(features, labels, 3, balanced=False, seed=0, transform=PIXELS, groups=groups).grouped
    one_patient = [groups[0] if label == 2 else group for label, group in zip(labels, groups)]
    fallback = LinearReadout.fit(features, labels, 3, balanced=False, seed=0, transform=PIXELS, groups=one_patient)
    plain = LinearReadout.fit(features, labels, 3, balanced=False, seed=0, transform=PIXELS)
    assert not fallback.grouped and not plain.grouped and fallback.C == plain.C
    notices: list[str] = []
    config = cfg.Config(log_dir=str(tmp_path))
    images = torch.from_numpy(features.astype(np.float32))
    readouts.fit_pixel_baseline(config, images, torch.from_numpy(labels), 3, notices.append, one_patient)
    assert notices == ["the pixel baseline's L2 strength was chosen on folds of single images, not of whole "
                       "groups: a class has training images of one group only"]
    with pytest.raises(SnnctlError, match="160 images but 3 groups"):
        LinearReadout.fit(features, labels, 3, balanced=False, seed=0, transform=PIXELS, groups=["a", "b", "c"])


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_tensors_round_trip_gives_the_same_probabilities(transform):
    counts, labels = separable_counts(90, 3, seed=4)
    readout = LinearReadout.fit(counts, labels, 3, balanced=True, seed=0, transform=transform)
    tensors, metadata = readout.to_tensors(), readout.metadata()
    assert all(array.dtype == np.float32 for array in tensors.values())
    assert metadata["readout.transform"] == transform and metadata["readout.balanced"] == "true"
    again = LinearReadout.from_tensors({k: v.copy() for k, v in tensors.items()}, dict(metadata))
    assert np.array_equal(again.predict_proba(counts), readout.predict_proba(counts))
    assert (again.C, again.transform, again.balanced) == (readout.C, readout.transform, readout.balanced)


def test_pixel_baseline_standardizes_without_log():
    rng = np.random.default_rng(5)
    pixels = rng.random((80, 16)) * 255
    labels = (pixels[:, 3] > 127).astype(int)
    readout = LinearReadout.fit(pixels, labels, 2, balanced=False, seed=0, transform=PIXELS)
    assert np.allclose(readout.mean, pixels.mean(axis=0), rtol=1e-5)
    assert (readout.predict(pixels) == labels).mean() >= 0.95


@pytest.fixture(scope="module")
def small_readout() -> LinearReadout:
    counts, labels = separable_counts(40, 2, seed=6, n_neurons=5)
    return LinearReadout.fit(counts, labels, 2, balanced=False, seed=0)


@pytest.mark.parametrize("broken, message", [
    (lambda t, m: t.pop("readout.scale"), "lacks readout.scale"),
    (lambda t, m: t.update({"readout.mean": np.zeros(3, np.float32)}), "readout.mean has shape"),
    (lambda t, m: m.update({"readout.transform": "sqrt"}), "readout.transform is 'sqrt'"),
    (lambda t, m: m.update({"readout.C": "strong"}), "readout.C is 'strong'"),
])
def test_from_tensors_names_what_is_wrong(small_readout, broken, message):
    tensors, metadata = small_readout.to_tensors(), small_readout.metadata()
    broken(tensors, metadata)
    with pytest.raises(SnnctlError, match=message):
        LinearReadout.from_tensors(tensors, metadata, source="run.safetensors")


def test_predict_rejects_images_with_another_number_of_features(small_readout):
    with pytest.raises(SnnctlError, match="fitted on 5 features, these images have 4"):
        small_readout.predict(np.ones((3, 4)))


@pytest.mark.parametrize("n_classes", [2, 4])
def test_auc_matches_scikit_learn(n_classes):
    rng = np.random.default_rng(8)
    labels = np.arange(200) % n_classes
    scores = rng.random((200, n_classes)) + 0.8 * np.eye(n_classes)[labels]
    scores = np.round(scores / scores.sum(axis=1, keepdims=True), 2)  # rounding makes ties
    scores /= scores.sum(axis=1, keepdims=True)
    expected = (roc_auc_score(labels, scores[:, 1]) if n_classes == 2
                else roc_auc_score(labels, scores, multi_class="ovr", average="macro"))
    assert metrics.roc_auc(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_auc_of_a_single_class_is_undefined():
    assert metrics.roc_auc(np.full((4, 3), 1 / 3), np.zeros(4, int)) is None


def test_auc_classes_are_the_positive_class_of_two_and_those_with_images_of_more():
    assert metrics.auc_classes(np.array([0, 1, 1]), 2) == [1]
    assert metrics.auc_classes(np.array([0, 2, 2, 0]), 3) == [0, 2]  # class 1 has no image
    assert metrics.auc_classes(np.zeros(3, int), 3) == []


def test_the_vote_and_the_scores_share_one_accuracy_and_recall():
    import torch

    from snnctl.readout import vote

    predictions, labels = torch.tensor([0, 0, 2, -1]), torch.tensor([0, 2, 2, 2])
    assert vote.accuracy(predictions, labels) == metrics.accuracy(predictions.numpy(), labels.numpy()) == 0.5
    assert np.isnan(vote.accuracy(torch.tensor([]), torch.tensor([])))  # no images: no share right
    assert np.isnan(metrics.accuracy(np.array([]), np.array([])))
    table = vote.per_class(predictions, labels, ["a", "b", "c"])
    recalls = metrics.class_recalls(predictions.numpy(), labels.numpy(), 3)
    assert [row.recall for row in table] == recalls == [1.0, None, pytest.approx(1 / 3)]
    assert [row.precision for row in table] == [0.5, None, 1.0]  # nothing predicted as b


def test_vote_shares_normalize_and_give_a_silent_image_equal_shares():
    shares = metrics.vote_shares(np.array([[3.0, 1.0], [0.0, 0.0]]))
    assert shares.tolist() == [[0.75, 0.25], [0.5, 0.5]]


def test_sensitivity_and_specificity_of_a_hand_made_confusion():
    # positives (1): 6 images, 4 found (TP 4, FN 2); negatives (0): 4 images, 3 kept (TN 3, FP 1)
    labels = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    predictions = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
    assert metrics.sensitivity_specificity(predictions, labels) == (4 / 6, 3 / 4)
    # an image without a prediction is neither found nor kept
    predictions[[0, 6]] = -1
    assert metrics.sensitivity_specificity(predictions, labels) == (3 / 6, 2 / 4)


def hand_made_predictions(n: int, correct: float) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % 2
    predictions = labels.copy()
    wrong = np.arange(n)[: int(round(n * (1 - correct)))]
    predictions[wrong] = 1 - predictions[wrong]
    return predictions, labels


def test_bootstrap_interval_holds_the_estimate_repeats_and_narrows():
    predictions, labels = hand_made_predictions(40, correct=0.75)
    low, high = metrics.bootstrap_interval(metrics.accuracy, predictions, labels, seed=3)
    assert low < 0.75 < high
    assert metrics.bootstrap_interval(metrics.accuracy, predictions, labels, seed=3) == (low, high)
    many = hand_made_predictions(400, correct=0.75)
    low_many, high_many = metrics.bootstrap_interval(metrics.accuracy, *many, seed=3)
    assert low_many < 0.75 < high_many
    assert high_many - low_many < (high - low) / 2


def test_bootstrap_resamples_depend_on_the_seed():
    values, labels = np.random.default_rng(0).random(30), np.arange(30) % 3

    def mean(outputs, truth, weights):
        return weights @ outputs / weights.sum(axis=1)

    intervals = [metrics.bootstrap_interval(mean, values, labels, seed=seed) for seed in (1, 1, 2)]
    assert intervals[0] == intervals[1] != intervals[2]


def test_bootstrap_keeps_each_class_size():
    labels = np.array([0] * 18 + [1] * 2)
    drawn = []

    def sizes(outputs, truth, weights):
        drawn.extend(np.stack([weights[:, truth == 0].sum(1), weights[:, truth == 1].sum(1)], 1).tolist())
        return np.zeros(len(weights))

    metrics.bootstrap_interval(sizes, labels, labels, seed=0, n_resamples=250)
    assert drawn == [[18, 2]] * 250


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_resample_scores_as_its_images_repeated(n_classes):
    rng = np.random.default_rng(10)
    labels = np.arange(30) % n_classes
    scores = np.round(rng.random((30, n_classes)) + np.eye(n_classes)[labels] * 0.5, 1)  # with ties
    predictions = scores.argmax(1)
    weights = rng.integers(0, 3, size=(4, 30))
    weights[:, :n_classes] += 1  # every class keeps an image
    for row, w in enumerate(weights):
        repeated = np.repeat(np.arange(30), w)
        for metric, outputs in ((metrics.roc_auc, scores), (metrics.accuracy, predictions),
                                (metrics.balanced_accuracy, predictions)):
            expected = metric(outputs[repeated], labels[repeated])
            assert metric(outputs, labels, weights)[row] == pytest.approx(expected), metric.__name__


def _ranked_with_ties(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels of three classes, scores rounded to make ties, their stable order and the first
    place of each distinct score."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    score = np.round(rng.random(n) + 0.3 * (labels == 1), 2)
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    return labels, score, order, np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1], True])


def test_the_compiled_resampled_auc_is_numpys_bit_for_bit():
    from snnctl.readout.mann_whitney import resampled_auc

    labels, _, order, starts = _ranked_with_ties(3000, 11)
    weights = np.ascontiguousarray(metrics._draw_counts(np.random.default_rng(12), 50, 3000).T, dtype=np.float64)
    compiled = resampled_auc(weights, order, starts, labels == 1)
    assert np.array_equal(compiled, metrics.resampled_auc_numpy(weights, order, starts, labels == 1))
    assert len(np.unique(compiled)) > 10 and 0.6 < compiled.mean() < 0.9  # the shifted class ranks higher


def test_auc_intervals_without_numba_are_the_compiled_ones(monkeypatch):
    labels, score, _, _ = _ranked_with_ties(600, 13)
    scores = np.stack([1 - score, score, np.zeros_like(score)], axis=1)
    compiled = metrics.bootstrap_interval(metrics.roc_auc, scores, labels, seed=4, n_resamples=200)
    monkeypatch.setitem(sys.modules, "snnctl.readout.mann_whitney", None)  # as if numba failed to import
    assert metrics.bootstrap_interval(metrics.roc_auc, scores, labels, seed=4, n_resamples=200) == compiled


def test_score_report_for_two_classes():
    labels = np.array([0, 0, 0, 0, 1, 1])
    predictions = np.array([0, 0, 0, 1, 1, -1])
    shares = metrics.vote_shares(np.array([[3, 0], [2, 1], [1, 0], [1, 2], [0, 4], [0, 0]]))
    report = metrics.score(predictions, labels, shares, ["benign", "malignant"], seed=0, n_resamples=200)
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.recall == {"benign": 0.75, "malignant": 0.5}
    assert report.balanced_accuracy == pytest.approx(0.625)
    assert (report.sensitivity, report.specificity) == (0.5, 0.75)
    assert report.auc == pytest.approx(roc_auc_score(labels, shares[:, 1]))
    for name in ("accuracy", "balanced_accuracy", "auc"):
        low, high = report.intervals[name]
        assert low <= getattr(report, name) <= high, name
    assert report.to_dict()["intervals"]["accuracy"] == report.intervals["accuracy"]


def test_score_report_for_more_classes_has_no_sensitivity():
    labels = np.array([0, 1, 2, 0, 1, 2])
    probabilities = np.eye(3)[[0, 1, 2, 0, 2, 1]] * 0.7 + 0.1
    report = metrics.score(probabilities.argmax(1), labels, probabilities, ["a", "b", "c"], seed=1,
                           n_resamples=100)
    assert report.sensitivity is None and report.specificity is None
    assert report.recall == {"a": 1.0, "b": 0.5, "c": 0.5}
    assert report.auc == pytest.approx(roc_auc_score(labels, probabilities, multi_class="ovr"))


def test_a_large_training_set_chooses_c_on_a_sample_and_keeps_rare_classes(monkeypatch):
    from snnctl.readout import linear

    monkeypatch.setattr(linear, "CV_ROWS", 40)
    counts, labels = separable_counts(150, 3, seed=9)
    sampled = LinearReadout.fit(counts, labels, 3, balanced=False, seed=0)
    assert (sampled.predict(counts) == labels).mean() >= 0.98
    labels[labels == 2] = 1
    labels[[2, 5]] = 2  # a sample of 40 would hold no or one image of class 2: all rows choose C
    rare = LinearReadout.fit(counts, labels, 3, balanced=True, seed=0)
    assert rare.coef.shape == (3, 30)


@pytest.mark.parametrize("extra", [1, 2, 3])
def test_a_training_set_a_few_rows_larger_than_the_sample_chooses_c_on_all_of_them(monkeypatch, extra):
    # readout_max_train: 5000 can fit on 5,002 images (each class rounded): a sample of
    # 5,000 would leave fewer rows than classes over, which sklearn refuses to split
    from snnctl.readout import linear

    monkeypatch.setattr(linear, "CV_ROWS", 40)
    counts, labels = separable_counts(40 + extra, 5, seed=4)
    readout = LinearReadout.fit(counts, labels, 5, balanced=False, seed=0)
    assert readout.coef.shape == (5, counts.shape[1]) and (readout.predict(counts) == labels).mean() >= 0.9


def winner_counts(n: int, n_classes: int, seed: int, n_neurons: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Counts of a large layer under the winner rule: two or three neurons fire per image,
    mostly among those of the image's class, so nearly every count is zero."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    counts = np.zeros((n, n_neurons), dtype=np.int64)
    per_class = n_neurons // n_classes
    for row, label in enumerate(labels):
        own = rng.integers(label * per_class, (label + 1) * per_class, size=2)
        counts[row, own] += rng.integers(1, 4, size=2)
        counts[row, rng.integers(n_neurons)] += 1  # a neuron of any class
    return counts, labels


def test_mostly_zero_counts_fit_sparse_to_the_readout_of_the_centred_fit(monkeypatch):
    from snnctl.readout import linear

    counts, labels = winner_counts(400, 3, seed=0)
    designs: list[bool] = []
    design = linear.Standardized.design

    def recording(self, x):
        designs.append(self.sparse)
        return design(self, x)

    monkeypatch.setattr(linear.Standardized, "design", recording)
    sparse = LinearReadout.fit(counts[:300], labels[:300], 3, balanced=False, seed=0)
    assert designs and all(designs)
    monkeypatch.setattr(linear, "SPARSE_SHARE", 0.0)
    designs.clear()
    dense = LinearReadout.fit(counts[:300], labels[:300], 3, balanced=False, seed=0)
    assert designs and not any(designs)
    # the same optimum, stored as the centred readout: the same statistics, weights and probabilities
    assert sparse.C == dense.C
    np.testing.assert_allclose(sparse.mean, dense.mean)
    np.testing.assert_allclose(sparse.scale, dense.scale)
    # up to where lbfgs stops, which differs between the two
    np.testing.assert_allclose(sparse.predict_proba(counts[300:]), dense.predict_proba(counts[300:]), atol=0.03)
    assert (sparse.predict(counts[300:]) == dense.predict(counts[300:])).all()
    assert (sparse.predict(counts[300:]) == labels[300:]).mean() >= 0.9


def test_mostly_zero_counts_are_read_out_sparse_to_the_probabilities_of_the_dense_formula(monkeypatch):
    from snnctl.readout import linear

    counts, labels = winner_counts(400, 3, seed=2)
    readout = LinearReadout.fit(counts[:300], labels[:300], 3, balanced=False, seed=0)
    held = counts[300:].astype(np.float32)
    monkeypatch.setattr(linear, "SPARSE_SHARE", 1.0)  # every matrix read out sparse
    sparse = readout.predict_proba(held)
    monkeypatch.setattr(linear, "SPARSE_SHARE", 0.0)  # and dense
    dense = readout.predict_proba(held)
    z = (np.log1p(held.astype(np.float64)) - readout.mean) / readout.scale
    logits = z @ readout.coef.T.astype(np.float64) + readout.intercept
    formula = np.exp(logits - logits.max(axis=1, keepdims=True))
    formula /= formula.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(dense, formula, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sparse, formula, rtol=1e-9, atol=1e-12)
    assert (sparse.argmax(axis=1) == dense.argmax(axis=1)).all()
