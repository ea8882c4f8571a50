"""The scores table that ``train``, ``evaluate`` and ``assign`` show: each readout and the
pixel baseline side by side, with 95% bootstrap intervals, chance and the verdict."""

from __future__ import annotations

from rich.table import Table

from snnctl.readout import READOUT_NAMES, ScoreReport


def percent(value: float | None, interval: tuple[float, float] | None = None) -> str:
    """``value`` as a percentage with its interval, if any; "n/a" for None (undefined)."""
    if value is None:
        return "n/a"
    return f"{value:.2%}" + (f" [{interval[0]:.2%}, {interval[1]:.2%}]" if interval is not None else "")


def _row(name: str, report: ScoreReport, two_classes: bool) -> list[str]:
    row = [name, percent(report.accuracy, report.intervals["accuracy"]),
           percent(report.balanced_accuracy, report.intervals["balanced_accuracy"]),
           percent(report.auc, report.intervals["auc"])]
    if two_classes:
        row += [percent(report.sensitivity), percent(report.specificity)]
    return row


def scores_table(scores, images: str) -> Table:
    """:class:`snnctl.service.readouts.Scores` as one table: a row per readout (the run's
    own marked), the baseline, then chance and the verdict as plain lines."""
    reports = {name: getattr(scores, name) for name in READOUT_NAMES if getattr(scores, name) is not None}
    level = next(iter(reports.values())).level
    table = Table(title=f"Scores on {images} ({level:.0%} bootstrap intervals)", title_justify="left")
    two_classes = any(report.sensitivity is not None for report in reports.values())
    columns = ["readout", "accuracy", "balanced accuracy", "AUC"] + (["sensitivity", "specificity"] if two_classes else [])
    for column in columns:
        table.add_column(column, justify="left" if column == "readout" else "right")
    for name, report in reports.items():
        label = READOUT_NAMES[name] + (" (this run's)" if name == scores.readout else "")
        table.add_row(*_row(label, report, two_classes))
    fitted = f", fitted on {scores.fit_images} training images" if scores.fit_images is not None else ""
    if scores.fit_images is not None and scores.fit_copies:
        fitted += f" and {scores.fit_copies} distorted {'copy' if scores.fit_copies == 1 else 'copies'} of each"
    if scores.fit_images is not None and scores.fit_groups:
        fitted += (f" of {scores.fit_groups} groups (their L2 strength chosen on folds that keep a group on "
                   f"one side)")
    table.caption = (f"chance: {scores.chance:.2%} balanced accuracy{fitted}"
                     + (f"\n{scores.verdict}" if scores.verdict else ""))
    table.caption_justify = "left"
    return table
