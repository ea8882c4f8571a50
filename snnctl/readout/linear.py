"""A linear readout: multinomial logistic regression on each image's features.

The Diehl & Cook (2015) vote keeps one class per neuron and throws the rest of the
layer's response away. This readout instead fits a multinomial logistic regression
(softmax regression, ``p(c | x) = exp(w_c . z + b_c) / sum_k exp(w_k . z + b_k)``, with an
L2 penalty ``|W|^2 / (2C)``; scikit-learn's ``LogisticRegression``, solver lbfgs) on

* the spike counts of the trained excitatory layer, learning off, with the transform
  ``z = (log1p(x) - mean) / scale`` (``COUNTS``): ``log1p`` tames the long tail of
  the counts of a few busy neurons, standardization puts every neuron on one scale so
  that the one penalty treats them alike;
* on a layer's input drive (``snnctl.readout.features``) squared, then standardized
  (``SQUARE_STANDARDIZE``, ``z = (f**2 - mean) / scale``): the rectified power of
  Krotov & Hopfield's (2019) hidden layer, which lets the few neurons that match an
  image best outweigh the many that match it a little;
* or raw pixels, as a baseline beside every result, with standardization only
  (``PIXELS``).

``mean`` and ``scale`` are the training rows' mean and standard deviation (1 where a
feature never varies). The penalty strength ``C`` is chosen from ``C_GRID`` by
stratified k-fold cross-validation inside the given training rows only (k = min(5,
smallest class size), folds shuffled with the given seed, standardization refitted in
each fold, the grid fitted along its path with warm starts, the folds on threads);
where the rows come in groups (a patient's views), the folds keep each group on one
side (k = min(5, fewest groups of a class); where a class has one group only, single
rows as without groups): a fold that holds out one view of a patient and fits on
another rewards memorizing patients, and chooses too weak a penalty,
scored by log loss (class-weighted when ``balanced``); the model is then refitted on all
training rows. Above ``CV_ROWS`` training rows, ``C`` is chosen on a
seeded, class-stratified sample of ``CV_ROWS`` of them: the grid costs 30 fits, too
many on 60,000 MNIST images, and a set that large is not where the penalty matters
most. ``balanced`` weights each class by ``n / (classes * n_c)``, so that a rare class
counts as much as a common one.

Features that are mostly zero (``SPARSE_SHARE``: the spike counts of a large layer under
the winner rule, where 11 of 6,400 neurons fire for an MNIST image) are fitted as a
sparse matrix, divided by ``scale`` but not centred, which keeps the zeros: the same
optimum, since the unpenalized intercept absorbs the mean (``w . (x - m) / s + b`` is
``w . x / s + (b - w . m / s)``), and the stored readout is the centred one. The
solver's products then skip the zeros: a 6,400-neuron layer's readout fits in a quarter
of the time, and its predictions on such rows skip them too (``LinearReadout._logits``).
The solver's products run in float32 (``FIT_DTYPE``), the precision the readout is
stored in, at half the time of float64.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from snnctl.errors import SnnctlError

COUNTS = "log1p-standardize"
STANDARDIZE = "standardize"
SQUARE_STANDARDIZE = "square-standardize"
PIXELS = STANDARDIZE  # the pixel baseline's transform
# What each transform does to a feature before its standardization.
ELEMENTWISE = {COUNTS: np.log1p, STANDARDIZE: np.asarray, SQUARE_STANDARDIZE: np.square}
TRANSFORMS = tuple(ELEMENTWISE)

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
MAX_FOLDS = 5
CV_ROWS = 5000
# Features with fewer nonzero values than this share are fitted as a sparse matrix.
SPARSE_SHARE = 0.05
# The solver's products run in float32, the precision the readout is stored in: half the
# time of float64 (a 10,001 x 6,400 fit: 26 s against 49 s, in as many iterations).
FIT_DTYPE = np.float32
# lbfgs on standardized features converges in a few hundred steps for the grid's C;
# the cap only stops a pathological fit.
MAX_ITER = 1000
_ONE_FIT_AT_A_TIME = threading.Lock()

TENSOR_NAMES = ("readout.coef", "readout.intercept", "readout.mean", "readout.scale")
METADATA_NAMES = ("readout.transform", "readout.C", "readout.balanced", "readout.sklearn_version")


@dataclass(frozen=True)
class LinearReadout:
    """A fitted readout: the transform's statistics and the softmax regression's weights.

    All arrays are float32, as stored in a checkpoint, so a reloaded readout gives the
    very probabilities of the one that was fitted.
    """

    transform: str  # one of TRANSFORMS
    mean: np.ndarray  # [features]
    scale: np.ndarray  # [features]
    coef: np.ndarray  # [classes, features]
    intercept: np.ndarray  # [classes]
    C: float
    balanced: bool
    sklearn_version: str
    # the final fit's solver stopped before MAX_ITER; not stored: a reloaded readout is as fitted
    converged: bool = True
    # C was chosen on folds that kept each group on one side; not stored, as converged
    grouped: bool = False

    @property
    def n_classes(self) -> int:
        return self.coef.shape[0]

    @property
    def n_features(self) -> int:
        return self.coef.shape[1]

    @classmethod
    def fit(cls, features, labels, n_classes: int, *, balanced: bool, seed: int,
            transform: str = COUNTS, workers: int = 1, groups: Sequence[str] | None = None) -> "LinearReadout":
        """Fit on the training rows ``features`` [n, features] with classes ``labels`` [n].

        Only these rows are seen: the choice of ``C`` and the final fit both use them
        and nothing else. With ``groups`` (one per row, e.g. the patient), the folds that
        choose ``C`` keep each group on one side (``grouped``), unless a class has rows
        of fewer than two groups: then, as without groups, single rows are held out
        (``grouped`` False). The folds run on up to ``workers`` threads (the same ``C``
        whatever their number). A final fit that stops at ``MAX_ITER`` solver iterations
        is ``converged`` False, with no warning. Raises SnnctlError when a class has fewer
        than two rows (too few to cross-validate) or the shapes disagree.
        """
        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        # One BLAS thread: these fits are many small products, where OpenBLAS's threads
        # spin against each other and against torch's on a busy machine (a 200-image fit
        # took 30 times longer with two threads than with one on two shared cores). That
        # limit and the warnings filters are the process's: one fit at a time (runs in
        # lockstep threads fit side by side). A fold's fit that stops early only ranks one C.
        with _ONE_FIT_AT_A_TIME, threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return cls._fit(features, labels, n_classes, balanced=balanced, seed=seed, transform=transform,
                            workers=workers, groups=groups)

    @classmethod
    def _fit(cls, features, labels, n_classes: int, *, balanced: bool, seed: int, transform: str,
             workers: int, groups: Sequence[str] | None) -> "LinearReadout":
        import sklearn

        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, not {transform!r}")
        x = _as_features(features, FIT_DTYPE)
        y = _as_labels(labels, len(x), n_classes)
        sizes = np.bincount(y, minlength=n_classes)
        if sizes.min() < 2:
            raise SnnctlError(f"the linear readout needs at least 2 training images of every class "
                              f"to choose its L2 strength; images per class: {sizes.tolist()}")
        x = ELEMENTWISE[transform](x)
        rows = _cv_rows(y, n_classes, seed)
        row_groups = None if not groups else _as_groups(groups, len(y))[rows]
        if row_groups is not None and min(_groups_per_class(y[rows], n_classes, row_groups)) < 2:
            row_groups = None  # no fold could fit on that class
        sparse = _mostly_zero(x)
        folds = Folds(_fold_count(y[rows], n_classes, row_groups), seed, workers, row_groups)
        c = _choose_c(x[rows], y[rows], n_classes, balanced, folds, sparse)
        standardized = Standardized.of(x, sparse)
        regression = _regression(c, balanced).fit(standardized.design(x), y)
        coef, intercept = regression.coef_, standardized.centred_intercept(regression)
        if n_classes == 2:
            # sklearn keeps one weight vector w for two classes, p(1) = sigmoid(w.z + b); the
            # softmax of (-w/2, w/2) is that same sigmoid, so both classes get a row.
            coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        return cls(transform, _f32(standardized.mean), _f32(standardized.scale), _f32(coef), _f32(intercept),
                   float(c), balanced, sklearn.__version__, converged=bool(regression.n_iter_.max() < MAX_ITER),
                   grouped=row_groups is not None)

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities [n, classes] (the softmax above)."""
        x = _as_features(features, dtype=None)
        if x.shape[1] != self.n_features:
            raise SnnctlError(f"the linear readout was fitted on {self.n_features} features, "
                              f"these images have {x.shape[1]}")
        logits = self._logits(x)
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """``z @ coef.T + intercept`` in float64. Mostly-zero rows (``SPARSE_SHARE``) go
        through a sparse matrix: every transform keeps 0 at 0, and ``w . (t(x) - m) / s``
        is ``t(x) . (w / s) - w . (m / s)``, so only the nonzero values are touched (a
        6,400-neuron layer's 10,000 test images: 0.3 s instead of 2.7 to 4.5 s and about
        2 GB of dense float64 copies)."""
        mean, scale, coef = (array.astype(np.float64) for array in (self.mean, self.scale, self.coef))
        intercept = self.intercept.astype(np.float64)
        if _mostly_zero(x):
            from scipy.sparse import csr_matrix

            rows = csr_matrix(x).astype(np.float64)
            rows.data = ELEMENTWISE[self.transform](rows.data)
            return np.asarray(rows @ (coef / scale).T) + (intercept - coef @ (mean / scale))
        z = (ELEMENTWISE[self.transform](np.asarray(x, dtype=np.float64)) - mean) / scale
        return z @ coef.T + intercept

    def predict(self, features) -> np.ndarray:
        """The most probable class of each row [n] (int64)."""
        return self.predict_proba(features).argmax(axis=1)

    def to_tensors(self) -> dict[str, np.ndarray]:
        """The weights as named float32 arrays (``TENSOR_NAMES``) for a checkpoint."""
        return dict(zip(TENSOR_NAMES, (self.coef, self.intercept, self.mean, self.scale)))

    def metadata(self) -> dict[str, str]:
        """The settings as strings (``METADATA_NAMES``), for a checkpoint's metadata."""
        return settings_metadata(self.transform, self.C, self.balanced, self.sklearn_version)

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], metadata: dict[str, str],
                     source: str = "checkpoint") -> "LinearReadout":
        """Rebuild from ``to_tensors()`` and ``metadata()``; SnnctlError naming ``source``
        and the key when something is missing or does not fit."""
        missing = [name for name in (*TENSOR_NAMES, *METADATA_NAMES) if name not in {**tensors, **metadata}]
        if missing:
            raise SnnctlError(f"{source}: the linear readout lacks {', '.join(missing)}")
        arrays = {name: _f32(np.asarray(tensors[name])) for name in TENSOR_NAMES}
        coef = arrays["readout.coef"]
        if coef.ndim != 2 or coef.shape[0] < 2:
            raise SnnctlError(f"{source}: readout.coef has shape {list(coef.shape)}, not [classes >= 2, features]")
        for name, shape in tensor_shapes(*coef.shape).items():
            if arrays[name].shape != shape:
                raise SnnctlError(f"{source}: {name} has shape {list(arrays[name].shape)}, expected {list(shape)}")
        coef, intercept, mean, scale = arrays.values()
        transform = metadata["readout.transform"]
        if transform not in TRANSFORMS:
            raise SnnctlError(f"{source}: readout.transform is {transform!r}, not one of {', '.join(TRANSFORMS)}")
        balanced = metadata["readout.balanced"]
        if balanced not in ("true", "false"):
            raise SnnctlError(f"{source}: readout.balanced is {balanced!r}, not 'true' or 'false'")
        try:
            c = float(metadata["readout.C"])
        except ValueError:
            raise SnnctlError(f"{source}: readout.C is {metadata['readout.C'][:40]!r}, not a number") from None
        return cls(transform, mean, scale, coef, intercept, c, balanced == "true", metadata["readout.sklearn_version"])


def settings_metadata(transform: str, c: float, balanced: bool, sklearn_version: str) -> dict[str, str]:
    """A readout's settings as the strings (``METADATA_NAMES``) that :meth:`LinearReadout.from_tensors` reads."""
    return dict(zip(METADATA_NAMES, (transform, repr(float(c)), "true" if balanced else "false", sklearn_version)))


def tensor_shapes(n_classes: int, n_features: int) -> dict[str, tuple[int, ...]]:
    """The shape of each stored tensor (``TENSOR_NAMES``) of a readout of ``n_classes``
    over ``n_features``: the one rule a checkpoint and :meth:`LinearReadout.from_tensors`
    check against."""
    return dict(zip(TENSOR_NAMES, ((n_classes, n_features), (n_classes,), (n_features,), (n_features,))))


def _cv_rows(y: np.ndarray, n_classes: int, seed: int) -> np.ndarray | slice:
    """The rows that choose C: all, or a class-stratified sample of ``CV_ROWS`` (all
    when fewer than one row per class would be left over, or when the sample would leave
    a rare class with fewer than two rows)."""
    from sklearn.model_selection import train_test_split

    everything = slice(None)  # a view: no copy of a large training set
    if len(y) - CV_ROWS < n_classes:  # a sample would leave too few rows over to split off by class
        return everything
    sample = train_test_split(np.arange(len(y)), train_size=CV_ROWS, stratify=y, random_state=seed)[0]
    return sample if np.bincount(y[sample], minlength=n_classes).min() >= 2 else everything


class Folds(NamedTuple):
    """How ``C`` is cross-validated: ``count`` stratified folds shuffled with ``seed``, run
    on up to ``workers`` threads, each of ``groups`` (one per row; None: every row its own)
    on one side."""

    count: int
    seed: int
    workers: int
    groups: np.ndarray | None = None


def _groups_per_class(y: np.ndarray, n_classes: int, groups: np.ndarray) -> list[int]:
    return [len(set(groups[y == label])) for label in range(n_classes)]


def _fold_count(y: np.ndarray, n_classes: int, groups: np.ndarray | None) -> int:
    """``MAX_FOLDS``, or fewer where a class has fewer rows (or groups) than that: every
    fold then fits on every class."""
    if groups is None:
        return min(MAX_FOLDS, int(np.bincount(y, minlength=n_classes).min()))
    return min(MAX_FOLDS, *_groups_per_class(y, n_classes, groups))


class Standardized(NamedTuple):
    """The training rows' ``mean`` and ``scale`` (1 where a feature never varies), and
    whether the regression sees its rows ``sparse``: ``x / scale``, zeros kept, in place
    of ``(x - mean) / scale`` (the same optimum, its intercept shifted by
    :meth:`centred_intercept`)."""

    mean: np.ndarray
    scale: np.ndarray
    sparse: bool

    @classmethod
    def of(cls, x: np.ndarray, sparse: bool) -> "Standardized":
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x)
        return cls(scaler.mean_, scaler.scale_, sparse)

    def design(self, x: np.ndarray):
        """The rows ``x`` as the regression sees them."""
        from scipy.sparse import csr_matrix, diags

        mean, scale = self.mean.astype(x.dtype), self.scale.astype(x.dtype)  # no float64 copy of x
        return (csr_matrix(x) @ diags(1 / scale)).tocsr() if self.sparse else (x - mean) / scale

    def centred_intercept(self, regression) -> np.ndarray:
        """The intercept of ``regression`` (fitted on :meth:`design`) for centred rows."""
        shift = regression.coef_ @ (self.mean / self.scale) if self.sparse else 0.0
        return regression.intercept_ + shift


def _choose_c(x: np.ndarray, y: np.ndarray, n_classes: int, balanced: bool, folds: Folds, sparse: bool) -> float:
    """The C of ``C_GRID`` with the best cross-validated log loss (ties: the stronger penalty).

    The folds are independent fits, so they run on threads (lbfgs spends its time in
    numpy, which releases the GIL: 1.6 times faster on 2 cores); their losses are added
    in fold order, so the choice does not depend on the number of threads.
    """
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if folds.groups is None:
        splits = StratifiedKFold(folds.count, shuffle=True, random_state=folds.seed).split(x, y)
    else:
        splits = StratifiedGroupKFold(folds.count, shuffle=True, random_state=folds.seed).split(x, y, folds.groups)
    with ThreadPoolExecutor(max(1, min(folds.workers, folds.count))) as pool:
        losses = sum(pool.map(lambda split: _fold_losses(x, y, *split, n_classes, balanced, sparse), splits))
    return float(C_GRID[int(np.argmin(losses))])  # argmin: the first, strongest penalty, on ties


def _fold_losses(x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, held_rows: np.ndarray, n_classes: int,
                 balanced: bool, sparse: bool) -> np.ndarray:
    """The held-out log loss of each C of ``C_GRID`` fitted on ``fit_rows``.

    The fold standardizes on its own training rows (:class:`Standardized`, ``sparse`` or
    not) and fits the grid from the strongest
    penalty to the weakest, each fit starting from the weights of the one before (a warm
    start along the regularization path): the same optima as fits from zero, in about
    half the solver's iterations.
    """
    from sklearn.metrics import log_loss
    from sklearn.utils.class_weight import compute_sample_weight

    fit_part = x[fit_rows]
    standardized = Standardized.of(fit_part, sparse)
    fit_x, held_x = standardized.design(fit_part), standardized.design(x[held_rows])
    weights = compute_sample_weight("balanced", y[held_rows]) if balanced else None
    model = _regression(C_GRID[0], balanced, warm_start=True)
    losses = np.zeros(len(C_GRID))
    for k, c in enumerate(C_GRID):
        model.set_params(C=c).fit(fit_x, y[fit_rows])
        # a grouped fold can fit on fewer classes: those it never saw get probability 0
        probabilities = np.zeros((len(held_rows), n_classes))
        probabilities[:, model.classes_] = model.predict_proba(held_x)
        probabilities /= probabilities.sum(axis=1, keepdims=True)  # float32 rows sum to 1 within 1e-7 only
        losses[k] = log_loss(y[held_rows], probabilities, sample_weight=weights, labels=list(range(n_classes)))
    return losses


def _regression(c: float, balanced: bool, warm_start: bool = False):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, solver="lbfgs", max_iter=MAX_ITER, warm_start=warm_start,
                              class_weight="balanced" if balanced else None)


def _as_features(features, dtype: type | None = np.float64) -> np.ndarray:
    x = np.asarray(features, dtype=dtype)
    if x.ndim != 2:
        raise SnnctlError(f"the linear readout takes one row of features per image, got an array of shape {list(x.shape)}")
    return x


def _mostly_zero(x: np.ndarray) -> bool:
    """Whether ``x`` has fewer nonzero values than ``SPARSE_SHARE`` of its size: fitted and
    read out as a sparse matrix."""
    return np.count_nonzero(x) < SPARSE_SHARE * x.size


def _as_groups(groups: Sequence[str], n_rows: int) -> np.ndarray:
    if len(groups) != n_rows:
        raise SnnctlError(f"the linear readout got {n_rows} images but {len(groups)} groups")
    return np.asarray(groups, dtype=object)


def _as_labels(labels, n_rows: int, n_classes: int) -> np.ndarray:
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(y) != n_rows:
        raise SnnctlError(f"the linear readout got {n_rows} images but {len(y)} labels")
    if n_classes < 2 or (len(y) and (y.min() < 0 or y.max() >= n_classes)):
        raise SnnctlError(f"the linear readout needs labels in 0..{n_classes - 1} of at least 2 classes")
    return y


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)
