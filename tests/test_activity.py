"""A layer whose neurons fire in lockstep (one feature, not one per neuron), or that stays
silent, is named: the summary of the counts, the notice and --json of train, evaluate and
assign, and a study's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from snnctl import config as cfg
from snnctl import service
from snnctl.cli import app
from snnctl.readout.activity import MAX_IMAGES, LayerActivity, describe, layer_activity

runner = CliRunner()


def test_copies_of_one_neurons_counts_are_in_lockstep_and_independent_neurons_are_not():
    rng = np.random.default_rng(0)
    one = rng.poisson(2.0, size=(300, 1))
    copies = np.hstack([one] * 30 + [2 * one] * 10)  # a scaled copy is the same feature
    assert layer_activity(copies) == LayerActivity(neurons=40, images=300, silent=0, in_lockstep=40)
    independent = rng.poisson(2.0, size=(300, 40))
    assert layer_activity(independent).in_lockstep == 0
    with_silent = np.hstack([independent, np.zeros((300, 5), dtype=np.int64)])
    assert layer_activity(with_silent) == LayerActivity(neurons=45, images=300, silent=5, in_lockstep=0)


def test_every_neuron_firing_the_same_constant_count_is_in_lockstep():
    # a constant mean has no correlation: equal counts image for image still say lockstep
    assert layer_activity(np.ones((50, 8), dtype=np.int32)).in_lockstep == 8
    assert layer_activity(np.hstack([np.ones((50, 1)), np.zeros((50, 7))])).in_lockstep == 0  # one neuron fired
    one = np.random.default_rng(2).poisson(2.0, size=(50, 1))
    assert layer_activity(np.hstack([one, 2 * one, np.zeros((50, 6))])).in_lockstep == 0  # two: too few to call
    assert layer_activity(np.hstack([one, 2 * one, 3 * one, np.zeros((50, 5))])).in_lockstep == 3


def test_a_large_set_is_summarized_on_evenly_spaced_images():
    rng = np.random.default_rng(1)
    counts = rng.poisson(1.0, size=(MAX_IMAGES * 3, 20))
    activity = layer_activity(counts)
    assert activity.images == MAX_IMAGES and activity.in_lockstep == 0


def test_describe_speaks_when_half_of_the_neurons_that_fired_are_in_lockstep():
    said = describe(LayerActivity(neurons=400, images=100, silent=0, in_lockstep=400), "the training images")
    assert said.startswith("400 of the 400 neurons that fired on the training images fired in lockstep")
    assert "one_spike: winner" in said
    assert describe(LayerActivity(neurons=400, images=100, silent=300, in_lockstep=49), "x") is None  # 49 of 100
    assert describe(LayerActivity(neurons=400, images=100, silent=300, in_lockstep=50), "x") is not None
    assert describe(LayerActivity(neurons=400, images=100, silent=359, in_lockstep=0), "x") is None


def test_describe_speaks_when_nine_neurons_in_ten_never_fired():
    said = describe(LayerActivity(neurons=400, images=100, silent=360, in_lockstep=0), "the 100 train images")
    assert said.startswith("360 of the 400 neurons never fired on the 100 train images") and "intensity" in said
    assert describe(LayerActivity(neurons=400, images=100, silent=400, in_lockstep=0), "x").startswith("400 of")
    assert LayerActivity(neurons=0, images=0, silent=0, in_lockstep=0).silent_share == 0.0


def small(mammo: Path, tmp_path: Path, **changes) -> cfg.Config:
    """ON/OFF input at 256 Hz without the winner rule; ``wmax: 1e-4`` clips every
    initial weight to one value, so every neuron gets the same drive."""
    return cfg.Config(data_dir=str(mammo), log_dir=str(tmp_path / "logs")).replace(**{
        **dict(task="MAMMO", n_classes=3, input_size=16, n_neurons=9, time=20, batch_size=4, update_interval=16,
               checkpoint_every=0, group=r"^(P\d+)_", normalize="percentile", encoding="on-off", baseline=False,
               one_spike="off", intensity=256, wmax=1e-4), **changes})


def test_a_run_in_lockstep_says_so_and_the_winner_rule_breaks_the_lockstep(mammo, tmp_path):
    params = tmp_path / "lockstep.yaml"
    params.write_text(cfg.dump_yaml(small(mammo, tmp_path)))
    shown = runner.invoke(app, ["train", str(params), "--out", str(tmp_path / "run"), "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["activity"]["in_lockstep"] == document["activity"]["neurons"] == 9
    assert "9 of the 9 neurons that fired on the training images fired in lockstep" in shown.stderr

    notices: list[str] = []
    winner = service.train(small(mammo, tmp_path, one_spike="winner"), out=tmp_path / "winner", notice=notices.append)
    assert winner.activity.in_lockstep == 0 and not any("lockstep" in n for n in notices)


def test_evaluate_and_assign_of_a_layer_in_lockstep_say_so(mammo, tmp_path):
    trained = service.train(small(mammo, tmp_path), out=tmp_path / "run")
    evaluated = runner.invoke(app, ["evaluate", trained.checkpoint, "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    document = json.loads(evaluated.stdout)
    assert document["activity"]["in_lockstep"] == 9 and document["activity"]["images"] == document["n_samples"]
    assert f"9 of the 9 neurons that fired on the {document['n_samples']} test images fired in lockstep" \
        in evaluated.stderr
    notices: list[str] = []
    assigned = service.assign(Path(trained.checkpoint), readout="linear", notice=notices.append)
    assert assigned.activity.in_lockstep == 9
    assert [n for n in notices if f"fired on the {assigned.n_label_samples} train images fired in lockstep" in n]

    notices.clear()
    winner = service.train(small(mammo, tmp_path, one_spike="winner"), out=tmp_path / "winner")
    assert service.evaluate(Path(winner.checkpoint), notice=notices.append).activity.in_lockstep == 0
    assert not any("lockstep" in n for n in notices)


def test_a_study_of_a_layer_in_lockstep_says_so_in_its_verdict(mammo, tmp_path):
    result = service.study(small(mammo, tmp_path), folds=2, out=tmp_path / "study", concurrent_folds=1)
    assert [fold.metrics["layer/lockstep_share"] for fold in result.per_fold] == [1.0, 1.0]
    assert "read from a layer that fired in lockstep in 2 of 2 folds" in result.verdict


def test_a_run_and_a_study_of_a_silent_layer_say_so(mammo, tmp_path):
    # input far too weak to reach the threshold: no spike, nothing learned, nothing to vote with
    weak = small(mammo, tmp_path, intensity=0.01, one_spike="winner", wmax=1.0)
    notices: list[str] = []
    trained = service.train(weak, out=tmp_path / "run", notice=notices.append)
    assert trained.activity.silent == trained.activity.neurons == 9
    assert [n for n in notices if n.startswith("9 of the 9 neurons never fired on the") and "intensity" in n]
    result = service.study(weak, folds=2, out=tmp_path / "study", concurrent_folds=1)
    assert [fold.metrics["layer/silent_share"] for fold in result.per_fold] == [1.0, 1.0]
    assert "read from a layer that stayed silent in 2 of 2 folds" in result.verdict

    firing = service.study(small(mammo, tmp_path, one_spike="winner"), folds=2, out=tmp_path / "firing",
                           concurrent_folds=1)
    assert all(fold.metrics["layer/silent_share"] < 0.9 for fold in firing.per_fold)
    assert "silent" not in (firing.verdict or "")
