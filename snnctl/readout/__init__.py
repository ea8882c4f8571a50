"""Readouts that turn a trained layer's spike counts into classes, and their scores.

``vote``: Diehl & Cook (2015)'s neuron assignment and its two votes (it needs torch, so
import it as ``snnctl.readout.vote``); ``linear``: multinomial logistic regression on
the counts (or, as a baseline, on the pixels); ``metrics``: accuracy, balanced accuracy,
ROC AUC, sensitivity/specificity and bootstrap intervals, gathered in one
``ScoreReport``. scikit-learn and scipy are imported only when a readout is fitted or
scored."""

from snnctl.readout.linear import COUNTS, PIXELS, LinearReadout
from snnctl.readout.metrics import READOUT_NAMES, ScoreReport, score, vote_shares

__all__ = ["COUNTS", "PIXELS", "READOUT_NAMES", "LinearReadout", "ScoreReport", "score", "vote_shares"]
