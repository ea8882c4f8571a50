"""How a study starts and resumes: its directory, the parameters and image files it
records in ``study.json``, and what it checks of the data before a fold runs
(:mod:`snnctl.service.studies` runs the folds and makes the table).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from snnctl import config as cfg
from snnctl.config import Config
from snnctl.errors import ConfigError, SnnctlError, WarningText
from snnctl.service.common import Notice, new_directory, read_state, with_absolute_data_paths, write_state

if TYPE_CHECKING:
    from snnctl.data import Splits

STATE_NAME = "study.json"  # what the study is: its parameters and image files (for --resume)
STATE_FORMAT, STATE_VERSION = "snnctl-study", 1


def write_study_state(study_dir: Path, config: Config, images: list[str]) -> None:
    write_state(study_dir / STATE_NAME, STATE_FORMAT, STATE_VERSION, {"parameters": config.to_dict(), "images": images})


def _read_study_state(study_dir: Path) -> tuple[Config, list[str] | None]:
    """The study's parameters and the image files it split (None: a study set up before
    they were recorded)."""
    path = study_dir / STATE_NAME
    state = read_state(path, STATE_FORMAT, STATE_VERSION, "study")
    try:
        images = state.get("images")
        return (cfg.from_mapping(state["parameters"], f"{path}: parameters"),
                None if images is None else [str(image) for image in images])
    except (KeyError, TypeError, ConfigError) as exc:
        raise SnnctlError(f"{path}: not a readable study state ({exc})") from None


def image_files_of(config: Config) -> set[str]:
    """The image files of the study's data folder, relative to it."""
    from snnctl.data.folders import image_files

    return image_files(config.data_dir)


def check_same_images(config: Config, recorded: list[str] | None, study_dir: Path) -> None:
    """The folds still to run split the images the study started with: the folds that ran
    already were split from them, and together the folds' test sets must be those images
    once each. A file added or gone since is one error naming it."""
    if recorded is None:
        return
    present, known = image_files_of(config), set(recorded)
    for changed, how, remedy in ((sorted(known - present), "one of the images of the study in", "restore it"),
                                 (sorted(present - known), "added since the study in", "move it out")):
        if changed:
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise SnnctlError(f"{Path(config.data_dir) / changed[0]}: {how} {study_dir} started{more}, whose folds "
                              f"split the images it started with; {remedy} to finish the study, or start a new one")


def each_once(notice: Notice) -> Notice:
    """``notice``, saying each message once: every fold splits the same folders and would
    repeat what the study's set-up said of them."""
    said: set[str] = set()

    def once(message: str) -> None:
        if message not in said:
            said.add(message)
            notice(message)

    return once


def notice_classes_short_of_folds(pool: "Splits", folds: int, notice: Notice) -> None:
    """Says which classes some folds cannot test: those with fewer patients (or images)
    than folds. Such a fold's balanced accuracy averages only the classes it tests."""
    import torch

    from snnctl.data.groups import classes_short_of_folds

    labels = torch.cat([pool.train.labels, pool.test.labels])
    groups = pool.train.groups + pool.test.groups
    for name, count in classes_short_of_folds(labels, groups, pool.train.class_names, folds):
        what = "patient group(s)" if groups else "image(s)"
        notice(WarningText(f"class {name!r} has {count} {what} for {folds} folds: {folds - count} or more folds test "
                           f"no {name} image, and their balanced accuracy averages the other classes' recall; "
                           f"--folds {max(count, 2)} tests it in every fold"))


def set_up(config: Config | None, folds: int | None, out: Path | None,
            resume: Path | None) -> tuple[Config, Path, list[str] | None]:
    """The study's parameters, its directory and, when it is resumed, the image files it
    recorded (None for a new one)."""
    if resume is not None:
        if config is not None or folds is not None or out is not None:
            raise ConfigError("train: --resume STUDY_DIR continues a study as it was set up, without PARAMS, "
                              "--folds or --out")
        study_dir = Path(resume).resolve()
        recorded_config, images = _read_study_state(study_dir)
        return recorded_config, study_dir, images
    if config is None:
        raise ConfigError("train: --folds needs a parameter file")
    if folds is not None:
        config = config.replace(folds=folds)
    if config.folds is None:
        raise ConfigError("train: a study needs folds (--folds K or folds: K)")
    if config.task != "MAMMO":
        # MNIST and Fashion-MNIST come with their test images: no pool of class folders to fold
        raise ConfigError(f"train: folds: a study cross-validates one pool of image folders (task: MAMMO), not "
                          f"task {config.task}; to score settings by cross-validation on its training images: "
                          f"snnctl sweep PARAMS SPACE --folds {config.folds}")
    config = with_absolute_data_paths(config.replace(fold=None))
    study_dir = new_directory(config, out, prefix="study-",
                              remedy=f"give another --out, or continue a study with --resume {out}").resolve()
    return config, study_dir, None
