"""Readouts that turn a trained layer's spike counts into classes, and their scores.

``linear``: multinomial logistic regression on the counts (or, as a baseline, on the
pixels); ``metrics``: accuracy, balanced accuracy, ROC AUC, sensitivity/specificity and
bootstrap intervals, gathered in one ``ScoreReport``. The Diehl & Cook vote lives in
``snnctl.labels``. scikit-learn and scipy are imported only when a readout is fitted or
scored.
"""

from snnctl.readout.linear import COUNTS, PIXELS, LinearReadout
from snnctl.readout.metrics import ScoreReport, score, vote_shares

__all__ = ["COUNTS", "PIXELS", "LinearReadout", "ScoreReport", "score", "vote_shares"]
