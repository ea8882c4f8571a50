"""The many-network engine (snnctl/engine/many.py) against the fast engine.

Each network of a lockstep group must be the network it would be alone on the fast
engine: the same spike counts at every presentation, and after learning the same
weights and thresholds, bit for bit. Run on the CPU here, and on CUDA by bench/device.sh
where a GPU is present.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from snnctl import config as cfg
from snnctl import engine as engines
from snnctl import network as net
from snnctl.engine import kernels
from snnctl.engine.lanes import uniform
from snnctl.engine.many import ManyNetworks

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
MODELS = ("diehl-cook-2015", "diehl-cook-2015-v2")


def base_config(**changes) -> cfg.Config:
    return cfg.Config().replace(**{**dict(n_neurons=20, time=60, batch_size=1), **changes})


def sparse_images(count: int, seed: int) -> torch.Tensor:
    """8-bit images with a fifth of the pixels lit, as the datasets keep them."""
    generator = torch.Generator().manual_seed(seed)
    lit = torch.rand(count, 784, generator=generator) < 0.2
    return (torch.rand(count, 784, generator=generator) * lit * 255).to(torch.uint8)


def group(configs: list[cfg.Config], device: str = "cpu", **options) -> tuple[ManyNetworks, list[engines.FastEngine]]:
    """The networks of ``configs`` in lockstep, and each alone on the fast engine."""
    many = ManyNetworks(configs, [net.initial_tensors(c) for c in configs], device, **options)
    return many, [engines.FastEngine(c, net.initial_tensors(c)) for c in configs]


def assert_same_networks(many: ManyNetworks, alone: list[engines.FastEngine]) -> None:
    for k, fast in enumerate(alone):
        got, expected = many.tensors(k), fast.sync()
        assert torch.equal(got.weights, expected.weights), f"network {k}: weights differ"
        assert torch.equal(got.theta, expected.theta), f"network {k}: thresholds differ"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("one_spike", ["bindsnet", "off", "winner"])
@pytest.mark.parametrize("one_step", [False, True], ids=["synchronous", "one_step"])
@pytest.mark.parametrize("model", MODELS)
def test_each_network_learns_as_it_would_alone_on_the_fast_engine(model, one_step, one_spike, device):
    base = base_config(model=model, one_step=one_step, one_spike=one_spike)
    # different seeds (initial weights), thresholds, rates, retry rules in one group
    configs = [base.replace(seed=1), base.replace(seed=2, theta_plus=0.1, intensity=96.0),
               base.replace(seed=3, exc_thresh=-50.0, min_spikes=6, nu_post=0.02)]
    many, alone = group(configs, device)
    images = sparse_images(15, seed=0)
    total = 0
    for k in range(5):
        if k == 3:  # a new epoch's rates, for one network
            many.set_learning_rates(1, 2e-4, 5e-3)
            alone[1].set_learning_rates(2e-4, 5e-3)
        seeds = [1000 * k + j for j in range(3)]
        batch = images[3 * k:3 * k + 3]
        counts = many.learn(batch, seeds)
        for j, fast in enumerate(alone):
            expected = fast.present_sequence(batch[j:j + 1], True, [seeds[j]])[0]
            assert torch.equal(counts[j], expected), f"presentation {k}, network {j}: spike counts differ"
            total += int(expected.sum())
    assert total >= 30  # there were spikes to compare
    assert_same_networks(many, alone)
    assert any(not torch.equal(many.tensors(k).weights, net.initial_tensors(c).weights) for k, c in enumerate(configs))


def test_a_part_of_the_group_learns_while_the_rest_waits():
    base = base_config(one_spike="bindsnet", min_spikes=2)
    configs = [base.replace(seed=s) for s in (4, 5, 6)]
    many, alone = group(configs)
    images = sparse_images(4, seed=1)
    many.learn(images[:3], [1, 2, 3])
    many.learn(images[3:4], [9], networks=[2])  # networks 0 and 1 wait: a shorter epoch
    for j, fast in enumerate(alone):
        fast.present_sequence(images[j:j + 1], True, [j + 1])
    alone[2].present_sequence(images[3:4], True, [9])
    assert_same_networks(many, alone)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", MODELS)
def test_inference_gives_the_fast_engines_counts_at_any_width(model, device):
    config = base_config(model=model, one_spike="bindsnet", batch_size=4, min_spikes=3, exc_thresh=-48.0)
    trained = net.initial_tensors(config)
    fast = engines.FastEngine(config, trained.clone())
    fast.present_sequence(sparse_images(8, seed=2), True, [0, 1])  # a network that has learned
    images = sparse_images(22, seed=3)
    seeds = [11, 12, 13, 14, 15, 16]
    expected = fast.present_sequence(images, False, seeds)
    many = ManyNetworks([config], [fast.sync()], device)
    # lanes of 5 images cut across the batches of 4: each image keeps its batch's generator
    assert torch.equal(many.infer(0, images, seeds, max_lanes=5), expected)
    assert torch.equal(many.infer(0, images, seeds), expected)
    # the retry rule was at work: without it, some image would stay (nearly) silent
    no_retries = engines.FastEngine(config.replace(min_spikes=0), fast.sync()).present_sequence(images, False, seeds)
    assert (no_retries.sum(1) < config.min_spikes).any()


def test_inference_by_matrix_products_runs_large_layers_and_batches_nearly_alike():
    # the fast path for large layers: input currents as one product per step, summed in
    # another order than the fast engine's (float rounding may move a rare spike)
    config = base_config(n_neurons=400, time=30, one_spike="off", batch_size=64)
    tensors = net.initial_tensors(config)
    tensors.weights *= config.norm / tensors.weights.sum(0)
    images = sparse_images(128, seed=4)
    expected = engines.FastEngine(config, tensors.clone()).present_sequence(images, False, [5, 6])
    got = ManyNetworks([config], [tensors], "cpu", current_sum="matmul").infer(0, images, [5, 6])
    assert expected.sum() > 1000
    assert (got != expected).float().mean() < 1e-3
    assert (got.argmax(1) == expected.argmax(1)).float().mean() > 0.95


def test_splitmix64_in_torch_draws_the_fast_engines_numbers():
    states = kernels.rng_states(123, 6)
    torch_states = torch.from_numpy(states.view(np.int64).copy())
    draw = torch.tensor([True, True, False, True, True, True])
    for _ in range(50):
        got = uniform(torch_states, draw)
        for b in range(6):
            if draw[b]:
                assert got[b].item() == kernels.rng.uniform(states[b:b + 1])
    assert np.array_equal(torch_states.numpy().view(np.uint64), states)


def test_networks_of_different_shapes_are_refused():
    base = base_config()
    with pytest.raises(ValueError, match="differ in shape"):
        group([base, base.replace(n_neurons=30)])
    with pytest.raises(ValueError, match="PoissonEncoder"):
        group([base.replace(encoder="BernoulliEncoder")])


# ---------------------------------------------------------------- studies and sweeps in lockstep


@pytest.mark.slow
def test_a_study_in_lockstep_gives_the_table_of_folds_run_one_after_another(tmp_path, monkeypatch):
    from snnctl import checkpoint as ckpt
    from snnctl import service
    from snnctl.data import synthetic

    data = tmp_path / "data"
    synthetic.write_folders(data, synthetic.SyntheticMammoSpec(patients=12, size=32, seed=1))
    config = cfg.Config(data_dir=str(data), log_dir=str(tmp_path / "logs")).replace(
        task="MAMMO", n_classes=3, input_size=12, n_neurons=8, time=20, batch_size=1, update_interval=8,
        checkpoint_every=0, one_spike="bindsnet", group=r"^(P\d+)_", min_spikes=2, epochs=2, nu_decay=0.5)
    alone = service.study(config, folds=3, out=tmp_path / "alone", concurrent_folds=1)
    stepped = []  # networks in each lockstep presentation
    learn = ManyNetworks.learn
    monkeypatch.setattr(ManyNetworks, "learn", lambda self, images, seeds, networks=None: (
        stepped.append(len(images)), learn(self, images, seeds, networks))[1])
    # two folds in one group, the third in a group of its own
    together = service.study(config.replace(networks_per_device=2, device="cpu"), folds=3, out=tmp_path / "together")
    assert "lockstep on cpu" in together.ran_on and max(stepped) == 2 and min(stepped) == 1
    for one, other in zip(alone.per_fold, together.per_fold):
        assert one.metrics == other.metrics and (one.n_train, one.n_test) == (other.n_train, other.n_test)
        first, second = ckpt.load(Path(one.checkpoint)), ckpt.load(Path(other.checkpoint))
        assert torch.equal(first.tensors.weights, second.tensors.weights)
        assert torch.equal(first.tensors.theta, second.tensors.theta)
        assert first.progress.samples_seen == second.progress.samples_seen > 0
    assert Path(together.table_file).read_text() == Path(alone.table_file).read_text()


@pytest.mark.parametrize("change, refusal", [({"batch_size": 4}, "batch_size is 4"),
                                              ({"batch_size": 1, "nu_post_theta": 10.0},
                                               r"nu_post_theta runs on the fast engine only, not in lockstep "
                                               r"\(set networks_per_device: null\)")])
def test_a_study_in_lockstep_refuses_what_it_cannot_run_before_it_starts(tmp_path, change, refusal):
    from snnctl import service
    from snnctl.errors import ConfigError

    config = cfg.Config(task="MAMMO", log_dir=str(tmp_path / "logs")).replace(networks_per_device=4, folds=3, **change)
    with pytest.raises(ConfigError, match=refusal):
        service.study(config, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_a_sweep_whose_trials_run_their_folds_in_lockstep_scores_them_as_one_after_another(tmp_path):
    import logging

    import ray
    import yaml

    from snnctl import service
    from snnctl.data import synthetic

    synthetic.write_folders(tmp_path / "mammo", synthetic.SyntheticMammoSpec(patients=12, size=32, seed=1))
    config = cfg.Config(task="MAMMO", data_dir=str(tmp_path / "mammo"), log_dir=str(tmp_path / "logs"), n_classes=3,
                        input_size=12, group=r"^(P\d+)_").replace(n_neurons=8, time=20, batch_size=1, update_interval=8,
                                                                  checkpoint_every=0, one_spike="bindsnet")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"parameters": {"inh": {"grid": [60, 120]}}, "metric": "all_activity",
                                     "trials": 1, "validation": 8, "seed": 7, "early_stopping": "none"}))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        alone = service.sweep(config, space, folds=2, out=tmp_path / "alone")
        together = service.sweep(config.replace(networks_per_device=2, device="cpu"), space, folds=2,
                                 out=tmp_path / "together")
    finally:
        ray.shutdown()

    def scores(result) -> dict:
        return {t.parameters["inh"]: t.validation_accuracy for t in result.trials}

    assert scores(together) == scores(alone) and len(scores(alone)) == 2
    assert together.final.test_accuracy == alone.final.test_accuracy
    assert together.final.engine == "FastEngine"


@pytest.mark.slow
def test_the_many_network_benchmark_prints_its_table_and_profiles():
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "bench" / "many.py"
    result = subprocess.run([sys.executable, str(script), "--quick", "--profile"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    # --profile: one profiled call per lockstep row, its operations' table on stderr
    profiled = re.findall(r"profile of one call: (.*)", result.stderr)
    assert profiled == ["STDP, 4 networks x 10 neurons", "STDP, 8 networks x 10 neurons",
                        "inference, 40 neurons, batch 16, matmul", "inference, 40 neurons, batch 16, exact"]
    assert result.stderr.count("Self CPU time total") == 4
    assert "Many-network engine on cpu vs the fast engine on one CPU core" in result.stdout
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()
                                              if line.startswith(("STDP", "inference")))}
    assert set(rows) == {"STDP, 4 networks x 10 neurons, one image each", "STDP, 8 networks x 10 neurons, one image each",
                         "inference, 40 neurons, batch 16, matmul", "inference, 40 neurons, batch 16, exact"}
    for case, cells in rows.items():
        many, fast, ratio = (float(value.replace(",", "").rstrip("x")) for value in cells[:3])
        assert many > 0 and fast > 0, case
        assert ratio == pytest.approx(many / fast, rel=0.05, abs=0.01), case
