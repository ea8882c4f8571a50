"""Patient groups: from a regex and from a CSV file; no group on both sides of a split or a
fold; stratification as close as the groups allow; folds that partition the data; one
clear error for each kind of bad input."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from snnctl import config as cfg
from snnctl import data
from snnctl.data import groups, synthetic
from snnctl.errors import ConfigError

PATIENT = re.compile(r"(P\d+)_")
GROUP = r"^(P\d+)_"


@pytest.fixture(scope="module")
def mammo(tmp_path_factory) -> Path:
    """30 synthetic patients (2-4 views each), 16 x 16 pixels: splits, not images, are tested."""
    root = tmp_path_factory.mktemp("mammo")
    synthetic.write_folders(root, synthetic.SyntheticMammoSpec(patients=30, size=16, bits=8, seed=3))
    return root


def mammo_config(root: Path, **changes) -> cfg.Config:
    return cfg.Config(task="MAMMO", data_dir=str(root), n_classes=3, input_size=16).replace(**changes)


def patients(dataset: data.Dataset) -> set[str]:
    return {PATIENT.search(Path(source).name).group(1) for source in dataset.sources}


def load(config: cfg.Config, notices: list[str] | None = None) -> data.Splits:
    return data.load_splits(config, (notices if notices is not None else []).append)


def test_a_grouped_split_never_leaks_and_an_ungrouped_one_on_the_same_data_does(mammo):
    for seed in (1, 2, 3):
        grouped = load(mammo_config(mammo, seed=seed, group=GROUP))
        assert patients(grouped.train).isdisjoint(patients(grouped.test))
        assert grouped.train.groups and len(grouped.train.groups) == len(grouped.train)
    leaked = [patients(s.train) & patients(s.test) for s in (load(mammo_config(mammo, seed=seed)) for seed in (1, 2, 3))]
    assert all(leaked), "an image-level split of 2-4 views per patient puts some patient on both sides"


def test_groups_from_a_csv_file_keep_its_groups_apart_and_its_labels_override_the_folders(mammo, tmp_path):
    files = sorted(p.relative_to(mammo).as_posix() for p in mammo.rglob("*.png"))
    # two patients per group, and one file whose label the CSV changes
    rows = ["path,group,label"] + [f"{f},G{int(PATIENT.search(f).group(1)[1:]) // 2},{'' if i else 'malignant'}"
                                   for i, f in enumerate(files)]
    table = tmp_path / "groups.csv"
    table.write_text("\n".join(rows) + "\n")
    splits = load(mammo_config(mammo, group_file=str(table)))
    assert set(splits.train.groups).isdisjoint(splits.test.groups)
    everything = data.concatenate(splits.train, splits.test)
    first = everything.sources.index(str(mammo / files[0]))
    assert everything.class_names[int(everything.labels[first])] == "malignant"
    assert files[0].split("/")[0] != "malignant"


def test_split_json_records_each_files_group_and_the_groups_per_side(mammo, tmp_path):
    splits = load(mammo_config(mammo, group=GROUP))
    data.write_manifest(tmp_path, splits)
    manifest = json.loads((tmp_path / data.MANIFEST_NAME).read_text())
    assert manifest["groups"]["regex"] == GROUP
    assert manifest["groups"]["train"] == len(set(splits.train.groups))
    assert manifest["groups"]["test"] == len(set(splits.test.groups))
    assert all(PATIENT.search(entry["file"]).group(1) == entry["group"] for entry in manifest["test"])
    again = data.load_manifest(tmp_path, mammo_config(mammo, group=GROUP), lambda message: None)
    assert again.test.groups == splits.test.groups and again.test.sources == splits.test.sources


def test_folds_partition_the_data_and_keep_each_group_in_one_fold(mammo):
    tests = [load(mammo_config(mammo, folds=5, fold=k, group=GROUP)).test for k in range(5)]
    sources = [source for test in tests for source in test.sources]
    assert len(sources) == len(set(sources)) == len(list(mammo.rglob("*.png")))
    fold_of = {}
    for k, test in enumerate(tests):
        for patient in patients(test):
            assert fold_of.setdefault(patient, k) == k


def test_stratification_is_within_one_image_of_the_ideal_when_groups_allow():
    # 60 images, 3 classes of 30/18/12, each image its own group: the ideal is exact
    labels = torch.tensor([0] * 30 + [1] * 18 + [2] * 12)
    assigned = groups.fold_of_each(labels, [str(i) for i in range(60)], folds=5, seed=7)
    for fold in range(5):
        counts = torch.bincount(labels[torch.from_numpy(assigned == fold)], minlength=3)
        ideal = torch.bincount(labels, minlength=3) / 5
        assert (counts - ideal).abs().max() <= 1


def test_grouped_folds_are_stratified_as_well_as_groups_of_two_to_four_allow(mammo):
    config = mammo_config(mammo, group=GROUP, folds=3)
    pool = [load(config.replace(fold=k)).test for k in range(3)]
    labels = torch.cat([test.labels for test in pool])
    ideal = torch.bincount(labels, minlength=3) / 3
    for test in pool:
        assert (torch.bincount(test.labels, minlength=3) - ideal).abs().max() <= 4  # one patient's views


def test_a_split_without_groups_on_patient_like_names_gets_a_notice(mammo, tmp_path):
    notices: list[str] = []
    load(mammo_config(mammo), notices)
    assert any("patient ids" in notice and "group:" in notice for notice in notices)
    notices.clear()
    load(mammo_config(mammo, group=GROUP), notices)
    assert not any("patient ids" in notice for notice in notices)
    plain = tmp_path / "plain"
    for index in range(12):
        folder = plain / ("a" if index % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), index * 20, np.uint8)).save(folder / f"image{index}.png")
    notices.clear()
    load(mammo_config(plain, n_classes=2, input_size=8), notices)
    assert not any("patient ids" in notice for notice in notices)


def _views(name: str) -> list[tuple[str, str]]:
    """Four views of each of 10 patients named as ``name`` formats them: (path, patient)."""
    return [(name.format(patient=patient, side=side, view=view, image=20586908 + 4 * patient + k), str(patient))
            for patient in range(10) for k, (side, view) in enumerate((s, v) for s in "LR" for v in ("CC", "MLO"))]


@pytest.mark.parametrize("name", [
    "P{patient:04d}_{side}_{view}.png",  # bench/mammo.py's synthetic sets
    "{image}_{patient:016x}_MG_{side}_{view}_ANON.dcm",  # INbreast: the image id first, the patient second
    "Mass-Training_P_{patient:05d}_{side}_{view}/1-1.dcm",  # CBIS-DDSM: a folder for each view
    "Calc-Test_P_{patient:05d}_{side}_{view}_1.png",  # CBIS-DDSM patches
    "woman{patient}/{side}_{view}.dcm",  # a folder for each patient
])
def test_the_suggested_expression_groups_a_patients_views_together(name):
    views = _views(name)
    suggestion = groups.looks_grouped([path for path, _ in views])
    assert suggestion is not None
    found = groups.groups_from_regex(suggestion, [path for path, _ in views])
    # the same partition as the patients: four views in each group, no group across patients
    assert len(set(found)) == 10
    assert all(len({patient for (_, patient), group in zip(views, found) if group == one}) == 1 for one in set(found))


@pytest.mark.parametrize("name", [
    "image{image}.png",  # no token at all
    "IMG{image}_{side}_{view}.png",  # an id for each image: nothing shared
    "case_{side}_{view}.png",  # shared tokens without a digit: sides and views, not women
])
def test_names_without_patient_ids_get_no_suggestion(name):
    assert groups.looks_grouped([path for path, _ in _views(name)]) is None


def test_an_expression_that_matches_no_file_name_is_told_one_that_does():
    paths = [path for path, _ in _views("Calc-Test_P_{patient:05d}_{side}_{view}_1.png")]
    with pytest.raises(ConfigError) as caught:
        groups.groups_from_regex(GROUP, paths)
    suggestion = groups.looks_grouped(paths)
    assert f"these names suggest '{suggestion}'" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("changes, words", [
    ({"group": "^(P\\d+"}, ["group:", "not a valid regular expression"]),
    ({"group": "^P\\d+_"}, ["group:", "no capture group"]),
    ({"group": "^(X\\d+)_"}, ["group:", "matches none"]),
    ({"group": "^(P000\\d)_"}, ["group:", "matches", " of "]),
    ({"group_file": "missing.csv"}, ["group_file:", "does not exist"]),
    ({"fold": 2}, ["fold:", "folds"]),
])
def test_bad_groups_are_one_clear_error(mammo, changes, words):
    with pytest.raises(ConfigError) as caught:
        load(mammo_config(mammo, **changes))
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_a_csv_naming_missing_files_or_leaving_files_out_is_one_clear_error(mammo, tmp_path):
    files = sorted(p.relative_to(mammo).as_posix() for p in mammo.rglob("*.png"))
    table = tmp_path / "groups.csv"
    table.write_text("path,group\n" + "".join(f"{f},{f[:5]}\n" for f in files) + "benign/P9999_L_CC.png,P9999\n")
    with pytest.raises(ConfigError, match=r"group_file: .*not in the data folder, e.g. 'benign/P9999_L_CC.png'"):
        load(mammo_config(mammo, group_file=str(table)))
    table.write_text("path,group\n" + "".join(f"{f},{f[:5]}\n" for f in files[1:]))
    with pytest.raises(ConfigError, match=r"group_file: .*no group for 1 file"):
        load(mammo_config(mammo, group_file=str(table)))
    table.write_text("path,group\n" + "".join(f"{f},{f[:5]}\n" for f in files) + f"{files[0]},OTHER\n")
    with pytest.raises(ConfigError, match=rf"group_file: .* line {len(files) + 2}: '{files[0]}' is listed again "
                                          r"\(first on line 2\)"):
        load(mammo_config(mammo, group_file=str(table)))
    table.write_text("file,patient\nx.png,1\n")
    with pytest.raises(ConfigError, match=r"group_file: .*needs the columns path and group"):
        load(mammo_config(mammo, group_file=str(table)))


def test_more_folds_than_groups_is_one_clear_error(mammo):
    with pytest.raises(ConfigError, match="folds: 40 folds need at least 40 groups, the data has 30"):
        load(mammo_config(mammo, group=GROUP, folds=40, fold=0))


def test_a_subfolder_per_patient_is_a_group(tmp_path):
    for patient in range(8):
        folder = tmp_path / ("a" if patient % 2 else "b") / f"woman{patient}"
        folder.mkdir(parents=True)
        for view in range(3):
            Image.fromarray(np.full((8, 8), 30 * view, np.uint8)).save(folder / f"view{view}.png")
    notices: list[str] = []
    config = mammo_config(tmp_path, n_classes=2, input_size=8)
    load(config, notices)
    assert any("'^([^/]+)/'" in notice for notice in notices)
    splits = load(config.replace(group="^([^/]+)/"))
    assert set(splits.train.groups).isdisjoint(splits.test.groups)
    assert Counter(splits.test.groups).most_common(1)[0][1] == 3


def test_a_validation_split_keeps_groups_apart_and_folds_of_it_partition_the_training_images():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2] * 3)
    names = [f"P{i // 3}" for i in range(len(labels))]  # 12 patients of three images each
    rest, held = groups.validation_split(labels, names, 9, seed=1)
    assert {names[i] for i in rest.tolist()}.isdisjoint(names[i] for i in held.tolist())
    assert 6 <= len(held) <= 12
    parts = [groups.validation_split(labels, names, 9, seed=1, folds=3, fold=k)[1] for k in range(3)]
    assert sorted(torch.cat(parts).tolist()) == list(range(len(labels)))
    plain_rest, plain_held = groups.validation_split(labels, [], 9, seed=1)
    assert len(plain_held) == 9 and len(plain_rest) == len(labels) - 9


def test_an_expression_that_misses_some_files_is_told_how_many_it_matches_as_typed(mammo, tmp_path):
    copy = tmp_path / "mammo"
    shutil.copytree(mammo, copy)
    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*.png"))
    (copy / "benign" / "scan 12.png").write_bytes((copy / files[0]).read_bytes())
    with pytest.raises(ConfigError) as caught:
        load(mammo_config(copy, group=GROUP))
    message = str(caught.value)
    assert f"group: '{GROUP}' matches {len(files)} of {len(files) + 1} of the file paths" in message, message
    assert "'scan 12.png'" in message and "\\\\" not in message
