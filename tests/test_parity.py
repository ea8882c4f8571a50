"""The fast engine against BindsNET, the reference (docs/engine.md).

Both engines get the same input spike trains; the excitatory spikes must be identical
step by step, and the weights and adaptive thresholds after learning equal to float
tolerance: for both models, both run modes, batch 1 and batch > 1, learning on and
off, over a few hundred steps. Where BindsNET draws random numbers inside a step (its
one-spike rule), the engines must agree exactly while at most one neuron crosses per
step, and in distribution otherwise. The fast Poisson generator must agree in
distribution with ``bindsnet.encoding.poisson``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl import engine as engines
from snnctl import network as net
from snnctl import service
from snnctl.engine import kernels
from snnctl.errors import ConfigError

from conftest import tiny_config

CPU = torch.device("cpu")
# Run by bench/device.sh on a machine with a GPU; skipped elsewhere.
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
MODELS = ("diehl-cook-2015", "diehl-cook-2015-v2")
# float32 weights after 300 steps of STDP: BindsNET sums a batch's updates with BLAS and a
# column's weights (normalization) with a vectorized reduction, in orders of its own;
# differences seen are below 5e-7 (a few ulps of weights near 0.1 .. 1).
WEIGHT_TOLERANCE = 2e-6
# A z-score above 5 between two samples of one distribution has probability 6e-7: the
# distribution tests below fail by chance about once in a million runs per statistic.
Z_LIMIT = 5.0


def configure(**changes) -> cfg.Config:
    values = dict(n_neurons=20, time=100, one_spike="off", batch_size=1)
    return cfg.Config().replace(**{**values, **changes})


def normalized(config: cfg.Config) -> net.NetworkTensors:
    """A fresh network whose input weights sum to ``norm`` per neuron, as any trained one does."""
    tensors = net.initial_tensors(config)
    tensors.weights *= config.norm / tensors.weights.sum(0)
    return tensors


def poisson_inputs(config: cfg.Config, batch: int, presentations: int, seed: int = 0) -> list[torch.Tensor]:
    """BindsNET-encoded spikes of random sparse images (a fifth of the pixels lit)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = []
    for k in range(presentations):
        lit = torch.rand(batch, config.n_inputs, generator=generator) < 0.2
        pixels = torch.rand(batch, config.n_inputs, generator=generator) * lit
        inputs.append(engines.encode(config, pixels * config.intensity, seed=seed * 1000 + k))
    return inputs


def run_both(config: cfg.Config, tensors: net.NetworkTensors, inputs: list[torch.Tensor], learn: bool,
             device: torch.device = CPU):
    """Present ``inputs`` to both engines (BindsNET on ``device``); assert identical spikes;
    return both final states, on the CPU."""
    reference = engines.BindsNETEngine(config, tensors.clone(), device)
    fast = engines.FastEngine(config, tensors.clone())
    n_spikes = 0
    for k, spikes in enumerate(inputs):
        expected = reference.present_spikes(spikes, learn, seed=k, record=True)
        got = fast.present_spikes(spikes, learn, seed=k, record=True)
        assert torch.equal(got.spikes, expected.spikes.cpu()), f"presentation {k}: excitatory spikes differ"
        assert torch.equal(got.counts, expected.counts.cpu())
        n_spikes += int(expected.counts.sum())
    return reference.sync(), fast.sync(), n_spikes


def assert_same_state(got: net.NetworkTensors, expected: net.NetworkTensors) -> None:
    torch.testing.assert_close(got.weights, expected.weights, rtol=0, atol=WEIGHT_TOLERANCE)
    torch.testing.assert_close(got.theta, expected.theta, rtol=0, atol=1e-7)


# ---------------------------------------------------------------- deterministic dynamics


@pytest.mark.parametrize("learn", [True, False], ids=["learn", "infer"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("one_step", [False, True], ids=["synchronous", "one_step"])
@pytest.mark.parametrize("model", MODELS)
def test_same_spikes_weights_and_thresholds_as_bindsnet(model, one_step, batch, learn):
    config = configure(model=model, one_step=one_step, batch_size=batch)
    start = normalized(config)
    expected, got, n_spikes = run_both(config, start, poisson_inputs(config, batch, 3), learn)
    assert n_spikes >= 10 * batch  # the comparison has spikes to compare
    assert_same_state(got, expected)
    if learn:
        assert (got.weights - start.weights).abs().max() > 1e-3 and got.theta.max() > 0
    else:  # nothing learns: the fast engine leaves the state exactly as it was
        assert torch.equal(got.weights, start.weights) and torch.equal(got.theta, start.theta)


@needs_cuda
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("model", MODELS)
def test_bindsnet_on_cuda_gives_the_fast_engines_spikes_weights_and_thresholds(model, batch):
    config = configure(model=model, one_step=True, batch_size=batch)
    expected, got, n_spikes = run_both(config, normalized(config), poisson_inputs(config, batch, 3), True,
                                       torch.device("cuda"))
    assert n_spikes >= 10 * batch
    assert_same_state(got, expected)


@needs_cuda
@pytest.mark.parametrize("encoder", ["PoissonEncoder", "BernoulliEncoder", "RankOrderEncoder"])
def test_every_encoder_gives_its_input_on_cuda(encoder):
    config = configure(encoder=encoder, n_neurons=5)
    rates = torch.rand(2, config.n_inputs) * config.intensity
    spikes = engines.encode(config, rates, seed=1, device=torch.device("cuda"))
    assert spikes.device.type == "cuda" and spikes.shape == (config.steps, 2, config.n_inputs) and spikes.any()


@needs_cuda
def test_training_on_cuda_saves_a_checkpoint_that_evaluates_on_either_device(tmp_path):
    config = tiny_config(tmp_path, device="cuda", time=100, batch_size=16, n_train=64,
                         n_test=32, update_interval=32)
    result = service.train(config)
    assert (result.engine, result.device) == ("BindsNETEngine", "cuda")
    stored = ckpt.load(result.checkpoint)
    assert stored.tensors.weights.device == CPU and stored.tensors.theta.max() > 0
    # the input spikes are drawn on the GPU: evaluate there reproduces train's figure
    on_gpu = service.evaluate(Path(result.checkpoint), device="cuda")
    assert on_gpu.accuracy.all_activity == pytest.approx(result.test_accuracy.all_activity)
    # on the CPU (the fast engine; other input draws) the same network runs on the same images
    on_cpu = service.evaluate(Path(result.checkpoint), device="cpu")
    assert on_cpu.n_samples == 32 and on_cpu.classes == stored.class_names


@pytest.mark.parametrize("reduction", ["mean", "max"])
@pytest.mark.parametrize("model, one_step", [("diehl-cook-2015", False), ("diehl-cook-2015-v2", True)])
def test_batch_reductions_of_stdp_match_bindsnet(model, one_step, reduction):
    config = configure(model=model, one_step=one_step, batch_size=4, stdp_reduction=reduction)
    expected, got, _ = run_both(config, normalized(config), poisson_inputs(config, 4, 3, seed=1), learn=True)
    assert_same_state(got, expected)


@pytest.mark.parametrize("model", MODELS)
def test_a_time_step_other_than_one_millisecond(model):
    # dt = 0.5 ms: 100 steps for time 50; decays, refractory counts and Poisson intervals scale
    config = configure(model=model, batch_size=2, dt=0.5, time=50)
    expected, got, n_spikes = run_both(config, normalized(config), poisson_inputs(config, 2, 3), learn=True)
    assert n_spikes >= 20
    assert_same_state(got, expected)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("model", MODELS)
def test_weights_pushed_past_wmax_by_normalization_are_clipped_as_bindsnet_does(model, batch):
    # Three neurons whose few inputs normalization lifts above wmax = 1: BindsNET clips the
    # whole matrix at every learning step, the fast engine everything at the first step
    # and only what changed afterwards.
    config = configure(model=model, one_step=True, batch_size=batch, n_neurons=10, time=50)
    tensors = net.initial_tensors(config)
    tensors.weights[:, :3] *= torch.rand(config.n_inputs, 3, generator=torch.Generator().manual_seed(2)) < 0.05
    tensors.weights *= config.norm / tensors.weights.sum(0)
    assert tensors.weights.max() > 2 * config.wmax
    expected, got, _ = run_both(config, tensors, poisson_inputs(config, batch, 3, seed=2), learn=True)
    assert_same_state(got, expected)
    assert got.weights.max() <= config.wmax * config.norm  # clipped, then normalized again


@pytest.mark.parametrize("model", MODELS)
def test_negative_weights_are_normalized_as_each_model_does(model):
    # With wmin < 0, DiehlAndCook2015v2's Connection divides by sums of absolute values,
    # DiehlAndCook2015's Weight feature by plain sums.
    config = configure(model=model, one_step=True, wmin=-0.3, n_neurons=10, time=50)
    tensors = normalized(config)
    tensors.weights -= 0.05
    assert tensors.weights.min() < 0
    expected, got, _ = run_both(config, tensors, poisson_inputs(config, 1, 2, seed=4), learn=True)
    assert_same_state(got, expected)


@pytest.mark.parametrize("model", MODELS)
def test_only_the_columns_that_changed_are_renormalized(model):
    # BindsNET rescales every column after every run; the fast engine the columns that
    # learned (and, on a fresh network, all of them once): the others already sum to
    # norm and stay bit for bit.
    config = configure(model=model, one_step=True, n_neurons=30, time=50)
    fresh = net.initial_tensors(config)
    engine = engines.FastEngine(config, fresh.clone())
    engine.present_spikes(poisson_inputs(config, 1, 1)[0], learn=True)
    torch.testing.assert_close(engine.tensors.weights.sum(0), torch.full((config.n_neurons,), config.norm))

    before = engine.tensors.weights.clone()
    counts = engine.present_spikes(poisson_inputs(config, 1, 1, seed=5)[0], learn=True).counts[0]
    spiked, silent = counts > 0, counts == 0
    assert spiked.any() and silent.any()
    assert torch.equal(engine.tensors.weights[:, silent], before[:, silent])
    assert not torch.equal(engine.tensors.weights[:, spiked], before[:, spiked])
    torch.testing.assert_close(engine.tensors.weights.sum(0), torch.full((config.n_neurons,), config.norm))


@pytest.mark.parametrize("model", MODELS)
def test_learning_rates_set_between_presentations_as_bindsnet(model):
    # nu_decay's schedule: both engines take new rates, and learn with them alike.
    config = configure(model=model, one_step=True, n_neurons=10, time=50)
    tensors = normalized(config)
    reference = engines.BindsNETEngine(config, tensors.clone(), CPU)
    fast = engines.FastEngine(config, tensors.clone())
    unchanged = engines.FastEngine(config, tensors.clone())
    for engine in (reference, fast):
        engine.set_learning_rates(4 * config.nu_pre, 0.5 * config.nu_post)
    for k, spikes in enumerate(poisson_inputs(config, 1, 3, seed=6)):
        expected = reference.present_spikes(spikes, True, seed=k, record=True)
        assert torch.equal(fast.present_spikes(spikes, True, seed=k, record=True).spikes, expected.spikes)
        unchanged.present_spikes(spikes, True, seed=k)
    assert_same_state(fast.sync(), reference.sync())
    assert (unchanged.sync().weights - fast.sync().weights).abs().max() > 100 * WEIGHT_TOLERANCE


@pytest.mark.parametrize("batch, reduction", [(1, "sum"), (4, "max")])
@pytest.mark.parametrize("model", MODELS)
def test_nu_post_theta_potentiates_as_bindsnet_at_the_rate_it_names(model, batch, reduction):
    # Thresholds held at theta (theta_plus 0): each neuron potentiates at nu_post / (1 + theta /
    # nu_post_theta), a third of nu_post here, which is what BindsNET does with that nu_post.
    theta, halved_at = 0.5, 0.25
    config = configure(model=model, one_step=True, n_neurons=10, time=50, batch_size=batch, stdp_reduction=reduction,
                       theta_plus=0.0, nu_post_theta=halved_at)
    tensors = normalized(config)
    tensors.theta.fill_(theta)
    every_rate_alike = config.replace(nu_post_theta=None)
    reference = engines.BindsNETEngine(every_rate_alike, tensors.clone(), CPU)
    reference.set_learning_rates(config.nu_pre, config.nu_post / (1 + theta / halved_at))
    fast = engines.FastEngine(config, tensors.clone())
    plain = engines.FastEngine(every_rate_alike, tensors.clone())
    n_spikes = 0
    for k, spikes in enumerate(poisson_inputs(config, batch, 3, seed=7)):
        expected = reference.present_spikes(spikes, True, seed=k, record=True)
        assert torch.equal(fast.present_spikes(spikes, True, seed=k, record=True).spikes, expected.spikes)
        plain.present_spikes(spikes, True, seed=k)
        n_spikes += int(expected.counts.sum())
    assert n_spikes > 10
    assert_same_state(fast.sync(), reference.sync())
    assert (plain.sync().weights - fast.sync().weights).abs().max() > 100 * WEIGHT_TOLERANCE
    with pytest.raises(ConfigError, match="nu_post_theta runs on the fast engine only"):
        engines.BindsNETEngine(config, tensors, CPU)


def test_learning_off_leaves_weights_alone_where_bindsnet_renormalizes():
    # The one intended difference: Network.run normalizes the input weights after every
    # run, learning or not; the fast engine changes nothing when nothing learns. On a
    # fresh (un-normalized) network the first presentation is the same, the weights not.
    config = configure(model="diehl-cook-2015-v2", one_step=True)
    fresh = net.initial_tensors(config)
    expected, got, _ = run_both(config, fresh, poisson_inputs(config, 1, 1), learn=False)
    assert torch.equal(got.weights, fresh.weights)
    torch.testing.assert_close(expected.weights.sum(0), torch.full((config.n_neurons,), config.norm))
    assert not torch.allclose(expected.weights, fresh.weights)


# ---------------------------------------------------------------- the one-spike rules


def owned_inputs(config: cfg.Config) -> net.NetworkTensors:
    """Each input drives one neuron (input i -> neuron i mod n) and the others barely."""
    tensors = net.initial_tensors(config)
    weights = 0.02 * tensors.weights
    weights[torch.arange(config.n_inputs), torch.arange(config.n_inputs) % config.n_neurons] = 1.0
    tensors.weights.copy_(weights * config.norm / weights.sum(0))
    return tensors


def one_owner_per_step(config: cfg.Config, batch: int, seed: int, per_step: int = 8) -> torch.Tensor:
    """Spikes where, at each step, ``per_step`` inputs of one randomly chosen neuron fire."""
    generator = torch.Generator().manual_seed(seed)
    n = config.n_neurons
    owned = torch.arange(config.n_inputs - config.n_inputs % n).view(-1, n)  # column j: inputs of neuron j
    spikes = torch.zeros(config.steps, batch, config.n_inputs, dtype=torch.uint8)
    for t in range(config.steps):
        for b in range(batch):
            neuron = int(torch.randint(n, (1,), generator=generator))
            rows = torch.randperm(len(owned), generator=generator)[:per_step]
            spikes[t, b, owned[rows, neuron]] = 1
    return spikes


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("one_step", [False, True], ids=["synchronous", "one_step"])
@pytest.mark.parametrize("model", MODELS)
def test_bindsnet_one_spike_rule_is_exact_while_at_most_one_neuron_crosses(model, one_step, batch):
    config = configure(model=model, one_step=one_step, batch_size=batch, n_neurons=7, one_spike="bindsnet")
    tensors = owned_inputs(config)
    inputs = [one_owner_per_step(config, batch, seed) for seed in range(3)]
    # Precondition, checked on BindsNET: with every crossing neuron spiking (rule off),
    # no two ever spike in the same step, so the rule never has to choose.
    check = engines.BindsNETEngine(config.replace(one_spike="off"), tensors.clone(), CPU)
    for spikes in inputs:
        assert check.present_spikes(spikes, True, record=True).spikes.sum(2).max() <= 1
    expected, got, n_spikes = run_both(config, tensors, inputs, learn=True)
    assert n_spikes >= 15 * batch
    assert_same_state(got, expected)


def z_score(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two-sample z statistic of the means of ``a`` and ``b`` along dim 0."""
    a, b = a.double(), b.double()
    error = (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()
    return (a.mean(0) - b.mean(0)) / error.clamp_min(1e-12)


def test_bindsnet_one_spike_rule_agrees_in_distribution_when_neurons_cross_together():
    # Four identical neurons always cross together; the rule lets one of them spike,
    # drawn by BindsNET from torch's generator and by the fast engine from its own.
    # 400 copies of one input train (learning off: independent samples) per engine.
    config = configure(model="diehl-cook-2015-v2", one_step=True, n_neurons=4, inh=5.0, one_spike="bindsnet")
    tensors = net.initial_tensors(config)
    tensors.weights.copy_(tensors.weights[:, :1].expand(-1, 4) * config.norm / tensors.weights[:, 0].sum())
    spikes = poisson_inputs(config, 1, 1, seed=3)[0].expand(-1, 400, -1).contiguous()
    off = engines.FastEngine(config.replace(one_spike="off"), tensors.clone()).present_spikes(spikes, False, record=True)
    assert off.spikes.sum(2).max() == 4  # they do cross together
    expected = engines.BindsNETEngine(config, tensors.clone(), CPU).present_spikes(spikes, False, seed=1, record=True)
    got = engines.FastEngine(config, tensors.clone()).present_spikes(spikes, False, seed=1, record=True)
    for run in (expected, got):
        assert run.spikes.sum(2).max() == 1  # one spike per step and image
        assert (run.counts > 0).float().mean() > 0.5  # and the rule spreads them over the neurons
    assert z_score(got.counts, expected.counts).abs().max() < Z_LIMIT  # each neuron's count
    assert z_score(got.counts.sum(1, keepdim=True), expected.counts.sum(1, keepdim=True)).abs() < Z_LIMIT
    assert z_score(first_spiker(got), first_spiker(expected)).abs().max() < Z_LIMIT  # who spikes first


def first_spiker(run: engines.Presentation) -> torch.Tensor:
    """One-hot [images, neurons]: the neuron that spiked first in each image."""
    fired = run.spikes.any(2)  # [steps, images]
    assert fired.any(0).all()
    first_step = fired.int().argmax(0)  # argmax returns the first of equal maxima
    return run.spikes[first_step, torch.arange(run.spikes.shape[1])].float()


def two_neurons_one_input(one_spike: str) -> tuple[cfg.Config, net.NetworkTensors, torch.Tensor]:
    """By hand: one input spike at step 0 lifts neuron 0 to -51 mV and neuron 1 to -50 mV,
    both above the -52 mV threshold; no inhibition, so nothing else happens."""
    config = cfg.Config().replace(model="diehl-cook-2015-v2", one_step=True, input_size=2, n_neurons=2, inh=0.0,
                                  time=4, one_spike=one_spike)
    tensors = net.initial_tensors(config)
    tensors.weights.zero_()
    tensors.weights[0] = torch.tensor([14.0, 15.0])
    spikes = torch.zeros(config.steps, 1, config.n_inputs, dtype=torch.uint8)
    spikes[0, 0, 0] = 1
    return config, tensors, spikes


def test_winner_rule_lets_only_the_furthest_neuron_cross():
    config, tensors, spikes = two_neurons_one_input("winner")
    engine = engines.FastEngine(config, tensors)
    run = engine.present_spikes(spikes, learn=True, record=True)
    # Step 0: neuron 1 (2 mV above threshold) wins, spikes and resets; neuron 0 did not
    # cross, keeps its -51 mV (decaying to -51.14) and crosses alone at step 1.
    assert run.spikes[:, 0].tolist() == [[False, True], [True, False], [False, False], [False, False]]
    theta = engine.sync().theta
    assert theta[0] == pytest.approx(config.theta_plus, rel=1e-5) and theta[1] == pytest.approx(config.theta_plus, rel=1e-5)
    with pytest.raises(ConfigError, match="'winner' runs on the fast engine only .* set one_spike: bindsnet or off"):
        engines.BindsNETEngine(config, tensors, CPU)


@pytest.mark.parametrize("engine_class", ["BindsNETEngine", "FastEngine"])
def test_off_and_bindsnet_rules_on_the_same_hand_made_case(engine_class):
    def run(one_spike: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        config, tensors, spikes = two_neurons_one_input(one_spike)
        make = getattr(engines, engine_class)
        engine = make(config, tensors, CPU) if engine_class == "BindsNETEngine" else make(config, tensors)
        return engine.present_spikes(spikes, learn=True, seed=seed, record=True).spikes[:, 0], engine.sync().theta

    spikes, theta = run("off")  # both cross and spike at step 0, then both are refractory
    assert spikes.tolist() == [[True, True], [False, False], [False, False], [False, False]]
    assert torch.all(theta > 0)
    picks = set()
    for seed in range(12):  # both cross and reset, theta rises for both, one of them spikes
        spikes, theta = run("bindsnet", seed)
        assert spikes[0].sum() == 1 and spikes[1:].sum() == 0 and torch.all(theta > 0)
        picks.add(int(spikes[0].int().argmax()))
    assert picks == {0, 1}  # drawn at random, from the presentation's seed


def test_membrane_update_is_bindsnets_arithmetic_bit_for_bit():
    """``neurons.diehl_cook_update``, compiled to vector instructions, against the operations
    of ``DiehlAndCookNodes.forward`` in torch: neurons in and out of their refractory
    period, below and above threshold, a length that leaves a remainder after the vectors,
    theta decayed first (a learning step) or left as it is (factor 1)."""
    from snnctl.engine.kernels.neurons import diehl_cook_update
    from snnctl.engine.params import kernel_params

    lif = kernel_params(configure()).exc.lif
    generator = np.random.default_rng(0)
    n = 1003
    for theta_decay in (np.float32(0.97), np.float32(1.0)):
        v = generator.uniform(-66.0, -50.0, n).astype(np.float32)
        refrac = generator.choice([-3.0, -1.0, 0.0, 0.5, 1.0, 5.0], n).astype(np.float32)
        theta = generator.uniform(0.0, 2.0, n).astype(np.float32)
        current = np.where(generator.random(n) < 0.2, 0.0, generator.uniform(0.0, 3.0, n)).astype(np.float32)
        expected_v, expected_refrac = torch.from_numpy(v.copy()), torch.from_numpy(refrac.copy())
        expected_theta = torch.from_numpy(theta.copy()).mul_(float(theta_decay))
        expected_v.sub_(lif.rest).mul_(lif.decay).add_(lif.rest)
        expected_v.add_((expected_refrac <= 0).float() * torch.from_numpy(current))
        expected_refrac.sub_(lif.dt)
        expected_spiked = expected_v >= lif.thresh + expected_theta
        assert 0 < int(expected_spiked.sum()) < n

        spiked = np.zeros(n, np.bool_)
        assert diehl_cook_update(v, refrac, theta, current, spiked, lif, theta_decay)
        assert np.array_equal(v.view(np.uint32), expected_v.numpy().view(np.uint32))
        assert np.array_equal(refrac.view(np.uint32), expected_refrac.numpy().view(np.uint32))
        assert np.array_equal(theta.view(np.uint32), expected_theta.numpy().view(np.uint32))
        assert np.array_equal(spiked, expected_spiked.numpy())
        assert not diehl_cook_update(np.full(n, lif.rest), np.zeros(n, np.float32), theta, np.zeros(n, np.float32),
                                     spiked, lif, np.float32(1.0))
        assert not spiked.any()


def test_rows_are_added_in_order_from_zero_or_onto_the_target_bit_for_bit():
    """``neurons.add_rows`` adds up to eight rows per pass, and its first pass starts from 0
    unless asked to keep the target: every element must be the float32 sum of the same
    rows one at a time, in order, for every number of rows (each mix of 8, 4, 2 and 1)."""
    from snnctl.engine.kernels.neurons import add_rows

    generator = np.random.default_rng(3)
    n = 37  # a remainder after the vectors
    # magnitudes far apart, so that the order of the additions shows in the sums
    matrix = (generator.uniform(-1.0, 1.0, (40, n)) * 1e3 ** generator.integers(-2, 3, (40, n))).astype(np.float32)
    for m in range(21):
        rows = generator.choice(40, m, replace=False).astype(np.int32)
        for keep in (False, True):
            start = generator.uniform(-1.0, 1.0, n).astype(np.float32)
            expected = start.copy() if keep else np.zeros(n, np.float32)
            for r in rows:
                expected = expected + matrix[r]
            target = start.copy()
            add_rows(target, matrix, rows, keep)
            assert np.array_equal(target.view(np.uint32), expected.view(np.uint32)), (m, keep)


def test_normalization_says_which_columns_it_took_outside_the_bounds():
    """``stdp.normalize_columns`` scales each column by ``(1 / sum) * norm`` as torch does,
    and flags only the columns it left with a weight outside [wmin, wmax] (or NaN): the
    others are not clipped again at the next learning step, which would change nothing."""
    from snnctl.engine.kernels.stdp import normalize_columns

    generator = np.random.default_rng(5)
    weights = generator.uniform(0.0, 0.2, (50, 6)).astype(np.float32)
    weights[:, 1] *= 0.1
    weights[3, 1] = 0.4  # the column sums to about 0.9: scaled by about 5.5, this weight ends above 1
    weights[7, 3] = np.nan
    weights[:, 4] = 0.0  # sums to 0: left at 0 (divided by 1)
    columns = np.array([0, 1, 3, 4, 5], np.int32)
    norm, low, high = np.float32(5.0), np.float32(0.0), np.float32(1.0)
    sums = torch.from_numpy(weights).sum(0)
    expected = torch.from_numpy(weights.copy())
    scale = (1.0 / torch.where(sums != 0, sums, torch.ones_like(sums))) * norm
    expected[:, columns] *= scale[columns]

    outside = normalize_columns(weights, columns, norm, False, low, high)
    assert outside.tolist() == [False, True, True, False, False]
    finite = ~np.isnan(weights)
    assert np.array_equal(weights[finite].view(np.uint32), expected.numpy()[finite].view(np.uint32))
    assert np.isnan(weights[:, 3]).all()  # a NaN in the sum spreads through the column, as in torch


def test_flagged_entries_are_found_eight_at_a_time_at_any_length_and_offset():
    """``scan.flagged`` reads the flags as 64-bit words: rows of a [batch, n] array start
    anywhere, n need not be a multiple of 8, and only entries with a bit of the flag count."""
    from snnctl.engine.kernels.scan import flagged

    generator = np.random.default_rng(1)
    for n in (0, 1, 7, 8, 9, 63, 100, 1003):
        share = generator.choice([0.0, 0.01, 0.5, 1.0], (3, 1))
        crossed = generator.random((3, n)) < share
        for row in range(3):  # rows 1 and 2 start n and 2n bytes in
            out = np.full(n, -1, np.int32)
            found = flagged(crossed[row].view(np.uint8), np.uint8(1), out)
            assert out[:found].tolist() == np.flatnonzero(crossed[row]).tolist()
        flags = generator.choice(np.array([0, 1, 2, 3], np.uint8), n, p=[0.7, 0.1, 0.1, 0.1])
        for flag in (1, 2):
            out = np.full(n, -1, np.int32)
            found = flagged(flags, np.uint8(flag), out)
            assert out[:found].tolist() == np.flatnonzero(flags & flag).tolist()


def test_the_inhibitory_layer_reads_only_the_non_zero_excitatory_weights_to_the_same_sums():
    """``neurons.sparse_rows`` keeps every weight that is not 0 (NaN too), in row order;
    ``drive_inhibitory`` through it adds each spiking row's weights in ascending order, as
    the dense loop did, and wakes each neuron a weight reaches, once."""
    from snnctl.engine.kernels.neurons import drive_inhibitory, sparse_rows

    generator = np.random.default_rng(2)
    dense = np.where(generator.random((9, 11)) < 0.3, generator.normal(size=(9, 11)), 0.0).astype(np.float32)
    dense[4, 2] = np.nan
    rows = sparse_rows(dense)
    for r in range(9):
        columns = rows.columns[rows.pointers[r]:rows.pointers[r + 1]]
        assert columns.tolist() == np.flatnonzero(dense[r] != 0).tolist()
        assert np.array_equal(rows.values[rows.pointers[r]:rows.pointers[r + 1]], dense[r, columns], equal_nan=True)

    spikers = np.array([1, 4, 6], np.int32)
    # neurons 0 and 3 woke at an earlier step: their currents from it are replaced
    current, awake, is_awake = np.zeros(11, np.float32), np.zeros(11, np.int32), np.zeros(11, np.bool_)
    awake[:2], is_awake[[0, 3]], current[[0, 3]] = [0, 3], True, 5.0
    n_awake = drive_inhibitory(current, rows, spikers, awake, is_awake, 2)
    reached = np.flatnonzero((dense[spikers] != 0).any(axis=0))
    assert sorted(awake[:n_awake].tolist()) == sorted(set(reached.tolist()) | {0, 3})
    assert is_awake.tolist() == [j in set(reached.tolist()) | {0, 3} for j in range(11)]
    expected = np.zeros(11, np.float32)
    for r in spikers:
        expected += np.where(dense[r] != 0, dense[r], np.float32(0))
    assert np.array_equal(current, expected, equal_nan=True)


# ---------------------------------------------------------------- input, retries, engines


def events_to_dense(pointers: np.ndarray, indices: np.ndarray, n_inputs: int) -> torch.Tensor:
    batch, steps = pointers.shape[0], pointers.shape[1] - 1
    dense = torch.zeros(steps, batch, n_inputs, dtype=torch.uint8)
    for b in range(batch):
        for t in range(steps):
            dense[t, b, indices[pointers[b, t]:pointers[b, t + 1]]] = 1
    return dense


def intervals(spikes: torch.Tensor) -> torch.Tensor:
    """Inter-spike intervals of one input's trains [steps, samples], all samples pooled."""
    gaps = [np.diff(np.flatnonzero(train)) for train in spikes.T.numpy()]
    return torch.from_numpy(np.concatenate(gaps))


def test_fast_poisson_generator_agrees_in_distribution_with_bindsnet():
    from bindsnet.encoding import poisson

    samples, steps, intensity = 3000, 100, 128.0
    # 0.02: 2.6 Hz, a mean interval of 390 steps, so (almost) never a spike in 100 steps;
    # 4.0: a retry's raised intensity
    levels = torch.tensor([0.0, 0.02, 0.25, 0.5, 1.0, 4.0])
    pixels = levels.expand(samples, -1).contiguous()
    states = kernels.rng_states(11, samples)
    fast = events_to_dense(*kernels.poisson_events(pixels.numpy(), np.float32(intensity), steps, 1.0, states),
                           len(levels))
    torch.manual_seed(11)
    reference = poisson(pixels * intensity, time=steps, dt=1.0)
    assert fast.shape == reference.shape and fast[:, :, 0].sum() == 0 == reference[:, :, 0].sum()
    # mean number of spikes per input
    assert z_score(fast.sum(0), reference.sum(0))[1:].abs().max() < Z_LIMIT
    # interval distribution of the inputs that spike often: two-sample Kolmogorov-Smirnov
    # at alpha = 0.001 (c = 1.95; conservative for these discrete distributions)
    for k in range(2, len(levels)):
        a, b = intervals(fast[:, :, k]), intervals(reference[:, :, k])
        cdf = lambda x: torch.bincount(x, minlength=steps).cumsum(0).double() / len(x)  # noqa: E731
        distance = (cdf(a) - cdf(b)).abs().max()
        assert distance < 1.95 * ((len(a) + len(b)) / (len(a) * len(b))) ** 0.5, f"level {levels[k]}"


def test_cdf_tables_carried_from_image_to_image_change_no_input_spike():
    """present_sequence keeps one set of CDF tables for all its images: each image's events
    are those drawn with fresh tables, also when the images hold more distinct values
    than the tables have slots (values evict each other) and when the intensity changes
    between calls (as a retry's does)."""
    generator = np.random.default_rng(5)
    images = generator.random((24, 784), dtype=np.float32)  # images 8 to 15: some 2,500 distinct values
    eight_bit = np.r_[0:8, 16:24]
    images[eight_bit] = np.round(images[eight_bit] * 255) / 255
    images[generator.random(images.shape) < 0.6] = 0.0
    tables = kernels.cdf_tables(100, np.float32(128.0), 1.0)
    for k, intensity in enumerate([128.0] * 16 + [256.0] * 4 + [128.0] * 4):
        image, rate = images[k:k + 1], np.float32(intensity)
        carried = kernels.poisson_events(image, rate, 100, 1.0, kernels.rng_states(k, 1), tables)
        fresh = kernels.poisson_events(image, rate, 100, 1.0, kernels.rng_states(k, 1))
        assert len(carried[1]) > 500, "the image makes input spikes"
        np.testing.assert_array_equal(carried[0], fresh[0])
        np.testing.assert_array_equal(carried[1], fresh[1])


def test_present_keeps_its_poisson_tables_and_draws_the_spikes_of_a_fresh_engine():
    """``FastEngine.present`` keeps its CDF tables from call to call (per thread and rate), as
    present_sequence keeps them from image to image: an image presented after others, with
    the tables they filled, at the full rate or at a retry's, spikes as on a fresh engine."""
    config = configure(model="diehl-cook-2015-v2", n_neurons=20)
    tensors = normalized(config)
    images = torch.from_numpy(np.random.default_rng(9).random((6, config.n_inputs), dtype=np.float32))
    used = engines.FastEngine(config, tensors.clone())
    for k in range(5):
        used.present(images[k:k + 1], False, seed=k)
    assert len(used.poisson_tables) == 1
    for intensity in (None, 2 * config.intensity):
        expected = engines.FastEngine(config, tensors.clone()).present(images[5:], False, 7, intensity, record=True)
        got = used.present(images[5:], False, 7, intensity, record=True)
        assert expected.spikes.sum() > 0
        assert torch.equal(got.spikes, expected.spikes)
    assert len(used.poisson_tables) == 2


class RecordingEngine(engines.FastEngine):
    """The fast engine, noting the size and intensity of each presentation."""

    def __init__(self, config: cfg.Config, tensors: net.NetworkTensors) -> None:
        super().__init__(config, tensors)
        self.calls: list[tuple[int, float | None]] = []

    def present(self, images, learn, seed, intensity=None, record=False):
        self.calls.append((len(images), intensity))
        return super().present(images, learn, seed, intensity, record)


def retries_config(**changes) -> cfg.Config:
    return configure(**{**dict(model="diehl-cook-2015-v2", n_neurons=10, min_spikes=1, max_retries=3,
                               intensity_step=32.0), **changes})


def test_silent_images_are_presented_again_brighter_until_max_retries():
    config = retries_config()
    engine = RecordingEngine(config, normalized(config))
    bright, blank = torch.ones(config.n_inputs), torch.zeros(config.n_inputs)
    counts = engines.present_with_retries(engine, config, torch.stack([bright, blank]), learn=False, seed=0)
    assert counts[0].sum() >= 1 and counts[1].sum() == 0
    # only the silent image again, 32 Hz brighter each time, then it gives up
    assert engine.calls == [(2, None), (1, 160.0), (1, 192.0), (1, 224.0)]


def test_a_retry_that_spikes_ends_the_retries():
    # 50 lit pixels at 1 Hz make about 5 input spikes: silent; at 501 Hz they fire
    config = retries_config(intensity=1.0, intensity_step=500.0)
    engine = RecordingEngine(config, normalized(config))
    image = torch.zeros(1, config.n_inputs)
    image[0, 300:350] = 1.0
    counts = engines.present_with_retries(engine, config, image, learn=False, seed=0)
    assert engine.calls == [(1, None), (1, 501.0)] and counts.sum() >= 1


def test_no_retries_when_min_spikes_is_zero():
    config = retries_config(min_spikes=0)
    engine = RecordingEngine(config, normalized(config))
    counts = engines.present_with_retries(engine, config, torch.zeros(2, config.n_inputs), learn=False, seed=0)
    assert engine.calls == [(2, None)] and counts.sum() == 0


class InputCountingEngine(engines.BindsNETEngine):
    """The BindsNET engine, counting the input spikes of each presentation."""

    def __init__(self, config: cfg.Config, tensors: net.NetworkTensors) -> None:
        super().__init__(config, tensors, CPU)
        self.input_spikes: list[int] = []

    def present_spikes(self, spikes, learn, seed=0, record=False):
        self.input_spikes.append(int(spikes.sum()))
        return super().present_spikes(spikes, learn, seed, record)


@pytest.mark.parametrize("encoder", ["PoissonEncoder", "BernoulliEncoder"])
def test_a_retry_raises_the_input_rate_of_every_encoder_that_can_be_raised(encoder):
    config = retries_config(encoder=encoder, one_spike="bindsnet")
    engine = InputCountingEngine(config, normalized(config))
    images = torch.rand(2, config.n_inputs, generator=torch.Generator().manual_seed(5))
    images[:, 0] = 1.0  # the brightest pixel at the maximum rate
    engine.present(images, learn=False, seed=3)
    engine.present(images, learn=False, seed=3, intensity=config.intensity + config.intensity_step)
    at_intensity, raised = engine.input_spikes
    # 160 Hz instead of 128 Hz: a quarter more spikes, about 7,000 of them
    assert raised > 1.15 * at_intensity


def test_bernoulli_input_fires_at_the_rate_poisson_input_does():
    config = configure(encoder="BernoulliEncoder", time=200)
    rates = torch.tensor([[50.0, 500.0, 2000.0]])
    spikes = engines.encode(config, rates, seed=1)
    # probability per step rate * dt / 1000, at most one spike a step
    assert spikes.shape == (200, 1, 3)
    assert 2 <= spikes[:, 0, 0].sum() <= 25 and 70 <= spikes[:, 0, 1].sum() <= 130
    assert spikes[:, 0, 2].sum() == 200


def test_rank_order_input_refuses_retries():
    with pytest.raises(ConfigError, match="min_spikes.*RankOrderEncoder"):
        configure(encoder="RankOrderEncoder", min_spikes=1)


def test_training_end_to_end_with_the_bindsnet_engine(tmp_path):
    config = tiny_config(tmp_path, engine="bindsnet", n_neurons=10, time=20, n_train=32, n_test=16,
                         update_interval=16, one_spike="bindsnet")
    result = service.train(config)
    assert result.engine == "BindsNETEngine" and result.samples_seen == 32
    stored = ckpt.load(result.checkpoint)
    torch.testing.assert_close(stored.tensors.weights.sum(0), torch.full((10,), config.norm))
    assert stored.tensors.theta.max() > 0 and stored.labels is not None
    # the checkpoint reproduces the test that train reported, image for image
    assert stored.info["test_accuracy"]["all_activity"] == result.test_accuracy.all_activity
    evaluated = service.evaluate(Path(result.checkpoint))
    assert evaluated.n_samples == result.n_test == 16 and evaluated.accuracy == result.test_accuracy


def test_auto_engine_is_fast_on_cpu_and_bindsnet_when_the_kernels_cannot_load(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # BindsNET would go to a GPU
    config = configure(n_neurons=5)
    assert isinstance(engines.make_engine(config, net.initial_tensors(config)), engines.FastEngine)
    monkeypatch.setitem(sys.modules, "snnctl.engine.kernels", None)  # as if numba failed to import
    engine = engines.make_engine(config, net.initial_tensors(config))
    assert isinstance(engine, engines.BindsNETEngine) and engine.device == CPU


def test_auto_device_keeps_the_fast_engine_on_the_cpu_when_a_gpu_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    config = configure(n_neurons=5)
    assert config.engine == "auto" and config.device == "auto"
    engine = engines.make_engine(config, net.initial_tensors(config))
    assert isinstance(engine, engines.FastEngine) and engine.device == CPU
    # BindsNET, asked for, or asked for through the device, runs on the GPU
    assert engines.resolve_device(config.replace(engine="bindsnet"), "bindsnet") == torch.device("cuda")
    assert engines.choose_engine(config.replace(device="cuda")) == "bindsnet"
    with pytest.raises(ConfigError, match="engine: 'fast' runs on the CPU, not on device 'cuda'"):
        engines.make_engine(config.replace(engine="fast", device="cuda"), net.initial_tensors(config))


def test_cuda_asked_for_without_a_gpu_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = configure(n_neurons=5, device="cuda")
    with pytest.raises(ConfigError, match=r"'cuda' was asked for but no CUDA device is available \(--device cpu"):
        engines.make_engine(config, net.initial_tensors(config))


def test_require_cpu_refuses_cuda_and_names_why():
    config = configure(n_neurons=5)
    for device in ("auto", "cpu"):
        engines.require_cpu(config.replace(device=device), "sweep trials run on CPUs")
    with pytest.raises(ConfigError, match=r"^device: 'cuda': sweep trials run on CPUs; use device: auto or cpu$"):
        engines.require_cpu(config.replace(device="cuda"), "sweep trials run on CPUs")
