"""Patient groups: which images belong together, and splits and folds that keep a group
on one side, stratified by class as well as the groups allow.

A mammography set holds two to four views per woman: a split that puts one breast in
training and the other in the test measures memory, not diagnosis. Groups come from
``group: REGEX`` (the first capture group of the expression, searched in each file's path
inside its class folder) or from ``group_file: PATH``, a CSV file with columns
``path,group`` and optionally ``label`` (a class name that overrides the folder).
Grouped splits and folds are scikit-learn's ``StratifiedGroupKFold``.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from snnctl.config import Config
from snnctl.data.dataset import stratified_split
from snnctl.errors import ConfigError
from snnctl.validators import yaml_quoted

SUGGESTED_FOR_FOLDERS = r"^([^/]+)/"
# A file's name, or its first folder's, is read as tokens between _ and - (and the suffix's
# dot); a patient id is one of the first few: P0001_L_CC.png (the first),
# 20586908_6c613a14b80a8591_MG_R_CC_ANON.dcm (INbreast: the second),
# Mass-Training_P_00001_LEFT_CC/1-1.dcm (CBIS-DDSM, a folder for each view: the fourth).
ID_TOKEN_POSITIONS = 6
# Most views a patient has in a set (four views, a few more with prior exams): a token
# shared by more files than this on average names a side, a view or a site, not a woman.
MOST_VIEWS_PER_PATIENT = 12


def inside_class_folder(relative: str, depth: int) -> str:
    """A file's path inside its class folder, from its path under the data folder
    (``depth``: folders above the class folder, 0 or 1 for train/ and test/)."""
    return PurePosixPath(*PurePosixPath(relative).parts[depth + 1:]).as_posix()


def groups_from_regex(pattern: str, paths: list[str]) -> list[str]:
    """The first capture group of ``pattern`` searched in each path; every path must match."""
    compiled = re.compile(pattern)
    found, missed = [], []
    for path in paths:
        match = compiled.search(path)
        if match is None or match.group(1) is None:
            missed.append(path)
        else:
            found.append(match.group(1))
    if missed:
        what = "none" if len(missed) == len(paths) else f"{len(paths) - len(missed)} of {len(paths)}"
        suggestion = looks_grouped(paths)
        hint = f" (these names suggest {yaml_quoted(suggestion)})" if suggestion else ""
        raise ConfigError(f"group: {yaml_quoted(pattern)} matches {what} of the file paths inside their class folders, "
                          f"not {missed[0]!r}; give an expression whose first group names the patient{hint}")
    return found


def read_group_file(path: str, classes: list[str]) -> dict[str, tuple[str, int | None]]:
    """The CSV file ``path``: each data-folder-relative file path -> (group, label or None)."""
    source = Path(path)
    try:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise ConfigError(f"group_file: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"group_file: {path}: cannot read: {exc}") from None
    columns = set(rows[0]) if rows else set()
    if not {"path", "group"} <= columns:
        raise ConfigError(f"group_file: {path}: needs the columns path and group (and optionally label), "
                          f"found {', '.join(sorted(c for c in columns if c)) or 'none'}")
    table: dict[str, tuple[str, int | None]] = {}
    first_line: dict[str, int] = {}
    for line, row in enumerate(rows, 2):
        file, group, label = ((row.get(key) or "").strip() for key in ("path", "group", "label"))
        if not file or not group:
            raise ConfigError(f"group_file: {path} line {line}: path and group must not be empty")
        if label and label not in classes:
            raise ConfigError(f"group_file: {path} line {line}: label {label!r} is not a class folder "
                              f"({', '.join(classes)})")
        key = PurePosixPath(file).as_posix()
        if key in first_line:  # a patient's views could otherwise be parted by the last row
            raise ConfigError(f"group_file: {path} line {line}: {file!r} is listed again (first on line "
                              f"{first_line[key]}); give each file one row")
        first_line[key] = line
        table[key] = (group, classes.index(label) if label else None)
    return table


def groups_from_file(path: str, files: list[str], classes: list[str]) -> tuple[list[str], list[int | None]]:
    """Each file's group and label override from the CSV ``path``; the CSV must name every
    file, and every file it names must be in the data folder."""
    table = read_group_file(path, classes)
    missing = sorted(set(table) - set(files))
    if missing:
        raise ConfigError(f"group_file: {path} names {len(missing)} file(s) not in the data folder, e.g. {missing[0]!r}")
    unnamed = [file for file in files if file not in table]
    if unnamed:
        raise ConfigError(f"group_file: {path} gives no group for {len(unnamed)} file(s), e.g. {unnamed[0]!r}")
    return [table[file][0] for file in files], [table[file][1] for file in files]


def token_expression(position: int) -> str:
    """The ``group`` expression whose first group is token ``position`` (from 0) of a path's
    first part (its file name, or its first folder), the tokens separated by _ or -
    (:data:`ID_TOKEN_POSITIONS`)."""
    skipped = f"(?:[^_/-]+[_-]){{{position}}}" if position else ""
    return f"^{skipped}([^_./-]+)[_.-]"


def looks_grouped(paths: list[str]) -> str | None:
    """A ``group`` expression to suggest when paths inside class folders look as if they
    carry patient ids, else None: one of the first tokens of every path an id (it has a
    digit in most paths) that a few files share each (more than half the files share
    theirs, at most :data:`MOST_VIEWS_PER_PATIENT` on average), or else most paths in a
    subfolder (a folder for each patient). The tokens come first: a folder for each view
    would part a woman's views."""
    if not paths:
        return None
    for position in range(ID_TOKEN_POSITIONS):
        expression = re.compile(token_expression(position))
        matches = [expression.search(path) for path in paths]
        if not all(matches):
            continue
        ids = [match.group(1) for match in matches]
        per_id = Counter(ids)
        shared = sum(count for count in per_id.values() if count > 1)
        with_digit = sum(any(character.isdigit() for character in token) for token in ids)
        if (shared > len(paths) / 2 and with_digit > 0.8 * len(paths)
                and len(paths) <= MOST_VIEWS_PER_PATIENT * len(per_id)):
            return expression.pattern
    return SUGGESTED_FOR_FOLDERS if sum("/" in path for path in paths) > len(paths) / 2 else None


def fold_of_each(labels: torch.Tensor, groups: list[str], folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each item: scikit-learn's ``StratifiedGroupKFold``, seeded,
    so a group lies in one fold and each fold's classes follow the whole set's as well as
    the groups allow."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(set(groups))
    if n_groups < folds:
        raise ConfigError(f"folds: {folds} folds need at least {folds} groups, the data has {n_groups}")
    # a StratifiedGroupKFold seed is a 32-bit integer; a sweep's seed (its space file) may be larger
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed % (2 ** 32))
    assigned = np.empty(len(groups), dtype=np.int64)
    y = labels.numpy()
    with warnings.catch_warnings():
        # a class with fewer groups than folds: scikit-learn warns on every split; a study
        # says it once, naming the class (classes_short_of_folds)
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        for fold, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
            assigned[test] = fold
    return assigned


def classes_short_of_folds(labels: torch.Tensor, groups: list[str], class_names: list[str],
                           folds: int) -> list[tuple[str, int]]:
    """Each class with fewer groups than ``folds`` (without groups, fewer images), and how
    many it has: at least that many fewer folds than ``folds`` test none of its images."""
    per_class: dict[int, set[str]] = {}
    names = groups if groups else [str(i) for i in range(len(labels))]
    for label, group in zip(labels.tolist(), names):
        per_class.setdefault(label, set()).add(group)
    return [(name, len(per_class.get(label, ()))) for label, name in enumerate(class_names)
            if len(per_class.get(label, ())) < folds]


def grouped_split(labels: torch.Tensor, groups: list[str], folds: int, fold: int,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices: ``fold`` of :func:`fold_of_each` held out, both sorted."""
    assigned = torch.from_numpy(fold_of_each(labels, groups, folds, seed))
    return torch.nonzero(assigned != fold).flatten(), torch.nonzero(assigned == fold).flatten()


def holdout_folds(test_fraction: float) -> int:
    """Folds of a grouped holdout split: one of them, about ``test_fraction``, is held out."""
    return max(2, round(1.0 / test_fraction))


def split_for(config: Config, labels: torch.Tensor, groups: list[str] | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(train, test) indices of ``config``'s split of a pool of images and how it was made:
    fold ``fold`` of ``folds`` when set, else a grouped holdout of about
    ``test_fraction``. Without groups, each image is its own group."""
    groups = groups if groups is not None else [str(i) for i in range(len(labels))]
    if config.fold is not None:
        train, test = grouped_split(labels, groups, config.folds, config.fold, config.seed)
        return train, test, f"fold {config.fold + 1} of {config.folds} held out"
    folds = holdout_folds(config.test_fraction)
    train, test = grouped_split(labels, groups, folds, 0, config.seed)
    return train, test, f"1 of {folds} folds held out (test_fraction {config.test_fraction:g})"


def validation_split(labels: torch.Tensor, groups: list[str], size: int, seed: int, folds: int | None = None,
                     fold: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rest, validation) indices of training images: fold ``fold`` of ``folds`` when
    given (a sweep scored by cross-validation); else with ``groups`` a grouped part of
    about ``size`` images (one of ``round(n / size)`` folds); else a stratified part of
    exactly ``size`` (:func:`snnctl.data.dataset.stratified_split`)."""
    if folds is not None:
        return grouped_split(labels, groups or [str(i) for i in range(len(labels))], folds, fold or 0, seed)
    if groups:
        return grouped_split(labels, groups, max(2, round(len(labels) / size)), 0, seed)
    return stratified_split(labels, size, seed)
