"""A long run survives Ctrl-C, SIGTERM, kill -9 and a full disk, and resumes bit for bit.

The interrupt tests run ``python -m snnctl train`` in a subprocess and send the signal once
the run has written its first periodic checkpoint (status.json appears), so the signal
always lands mid-epoch. The resume tests compare every tensor and every metadata entry
(but the creation time) of the final checkpoint with that of a run never interrupted.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnctl import choices
from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl import files
from snnctl import network as net
from snnctl import service
from snnctl.cli import app
from snnctl.errors import SnnctlError

from conftest import assert_one_line_error, tiny_config, write_mnist_idx

runner = CliRunner()
# One thread each, as the tests' own process runs (conftest): the runs are compared bit for bit.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
# A subprocess run: 800 training images in one epoch, a checkpoint every 40.
LONG = dict(n_train=800, n_test=40, epochs=1, checkpoint_every=40, time=100)  # 100 ms: neurons spike and learn


def snnctl(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snnctl", *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``path`` exists (the run wrote its first checkpoint and status)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before writing {path.name}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no {path.name} after {timeout} s")
        time.sleep(0.005)


def start_long_run(params: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A subprocess training run into tmp_path/run, once it wrote its first checkpoint."""
    run_dir = tmp_path / "run"
    process = snnctl("train", str(params), "--out", str(run_dir), cwd=tmp_path)
    wait_for(run_dir / ckpt.CHECKPOINT_NAME, process)
    return process, run_dir


def tensors_and_metadata(path: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """Everything a checkpoint holds, as raw bytes, but the time it was written."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as reader:
        tensors = {name: reader.get_tensor(name).tobytes() for name in reader.keys()}
        metadata = dict(reader.metadata())
    metadata.pop("created")
    return tensors, metadata


def assert_same_checkpoint(path: Path, reference: Path) -> None:
    tensors, metadata = tensors_and_metadata(path)
    expected_tensors, expected_metadata = tensors_and_metadata(reference)
    assert sorted(tensors) == sorted(expected_tensors)
    for name in tensors:
        assert tensors[name] == expected_tensors[name], f"{name} differs from the uninterrupted run"
    assert metadata == expected_metadata


def status_of(run_dir: Path) -> dict:
    return json.loads((run_dir / service.STATUS_NAME).read_text())


def tensorboard_tags(run_dir: Path) -> dict:
    """The tags of a run's TensorBoard log, read as TensorBoard reads it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    return events.Tags()


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> tuple[Path, Path]:
    """The parameter file of a subprocess run, and the checkpoint of that run uninterrupted."""
    root = tmp_path_factory.mktemp("long")
    write_mnist_idx(root / "data", n_train=LONG["n_train"], n_test=LONG["n_test"], compress=False)
    params = root / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(root, **LONG)))
    code, stdout, stderr = finish(snnctl("train", str(params), "--out", str(root / "reference"), "--json", cwd=root))
    assert code == 0, stderr
    assert stderr == ""
    reference = Path(json.loads(stdout)["checkpoint"])
    assert float(ckpt.load(reference).tensors.theta.max()) > 0  # it learned: resuming has state to get right
    return params, reference


# ---------------------------------------------------------------- signals


@pytest.mark.slow
@pytest.mark.parametrize("signum, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_epoch_saves_stops_and_resumes_bit_for_bit(long_run, tmp_path, signum, exit_code):
    params, reference = long_run
    process, run_dir = start_long_run(params, tmp_path)
    process.send_signal(signum)
    code, stdout, stderr = finish(process)

    assert code == exit_code, stderr
    checkpoint = run_dir / ckpt.CHECKPOINT_NAME
    assert stdout == ""
    assert stderr.splitlines() == [f"error: interrupted by {signum.name}: checkpoint saved to {checkpoint}; "
                                   f"continue with: snnctl train --resume {checkpoint}"]
    status = status_of(run_dir)
    stored = ckpt.load(checkpoint)
    assert status["state"] == "interrupted" and status["checkpoint"] == str(checkpoint)
    assert {key: status[key] for key in ("samples_seen", "epoch", "position", "finished")} == vars(stored.progress)
    assert stored.progress.epoch == 0 and 40 <= stored.progress.position < LONG["n_train"]
    assert stored.progress.samples_seen == stored.progress.position and not stored.progress.finished
    assert "weights" in tensorboard_tags(run_dir)["images"]  # logged at the checkpoint, flushed on the way out

    code, stdout, stderr = finish(snnctl("train", "--resume", str(checkpoint), "--json", cwd=tmp_path))
    assert code == 0, stderr
    assert json.loads(stdout)["samples_seen"] == LONG["n_train"]
    assert status_of(run_dir)["state"] == "finished"
    assert_same_checkpoint(checkpoint, reference)


@pytest.mark.slow
def test_kill_9_during_training_leaves_a_checkpoint_to_resume(long_run, tmp_path):
    params, reference = long_run
    process, run_dir = start_long_run(params, tmp_path)
    time.sleep(random.uniform(0.0, 0.5))
    process.kill()
    finish(process)

    checkpoint = run_dir / ckpt.CHECKPOINT_NAME
    stored = ckpt.load(checkpoint)  # whole, whatever moment the kill came
    assert stored.progress.samples_seen % LONG["checkpoint_every"] == 0
    # the status is written just after the checkpoint: at most one checkpoint behind
    assert 0 <= stored.progress.samples_seen - status_of(run_dir)["samples_seen"] <= LONG["checkpoint_every"]
    tensorboard_tags(run_dir)  # whatever reached the disk reads back

    code, _, stderr = finish(snnctl("train", "--resume", str(checkpoint), cwd=tmp_path))
    assert code == 0, stderr
    assert_same_checkpoint(checkpoint, reference)


def _saved_during_training(config: cfg.Config, out: Path, monkeypatch, slow: bool) -> list[tuple]:
    """Train; what each save wrote: samples seen, weights, theta, the running window. With
    ``slow``, every save first waits 0.2 s (a slow disk) while training goes on; without,
    periodic saves are written before training goes on, as before they had a thread."""
    from concurrent.futures import Future

    from snnctl.service import checkpointer

    class WriteNow:  # an executor that runs the save in the caller, at once
        def __init__(self, **_) -> None:
            pass

        def submit(self, write, *args) -> Future:
            done = Future()
            done.set_result(write(*args))
            return done

        def shutdown(self) -> None:
            pass

    saved, real_save = [], ckpt.save

    def recording_save(checkpoint: ckpt.Checkpoint, path) -> Path:
        if slow:
            time.sleep(0.2)
        window = checkpoint.window[0].clone() if checkpoint.window is not None else None
        saved.append((checkpoint.progress.samples_seen, checkpoint.tensors.weights.clone(),
                      checkpoint.tensors.theta.clone(), window))
        return real_save(checkpoint, path)

    monkeypatch.setattr(ckpt, "save", recording_save)
    if not slow:
        monkeypatch.setattr(checkpointer, "ThreadPoolExecutor", WriteNow)
    service.train(config, out=out)
    monkeypatch.undo()
    return saved


def test_a_checkpoint_written_while_training_goes_on_holds_the_run_at_its_image(tmp_path, monkeypatch):
    write_mnist_idx(tmp_path / "data", n_train=60, n_test=20)
    config = tiny_config(tmp_path, n_train=60, n_test=20, epochs=2, update_interval=16, checkpoint_every=12, time=100)
    behind = _saved_during_training(config, tmp_path / "slow", monkeypatch, slow=True)
    at_once = _saved_during_training(config, tmp_path / "now", monkeypatch, slow=False)
    assert [saved[0] for saved in behind] == [12, 24, 36, 48, 60, 72, 84, 96, 108, 120, 120]
    for (samples, *tensors), (_, *expected) in zip(behind, at_once, strict=True):
        for got, want in zip(tensors, expected):
            assert (got is None and want is None) or torch.equal(got, want), samples
    assert behind[-1][0] == ckpt.load(tmp_path / "slow" / ckpt.CHECKPOINT_NAME).progress.samples_seen


def _save_forever(checkpoint: ckpt.Checkpoint, path: Path, first: int) -> None:
    """The child of a fork: save ever newer checkpoints until killed."""
    try:
        for samples in range(first, 10**9):
            checkpoint.progress = ckpt.Progress(samples_seen=samples)
            ckpt.save(checkpoint, path)
    finally:
        os._exit(1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_at_random_moments_while_saving_never_breaks_the_checkpoint(tmp_path):
    config = cfg.Config().replace(n_neurons=400)  # 2.5 MB: a save takes a while
    checkpoint = ckpt.Checkpoint(config, net.initial_tensors(config), [str(d) for d in range(10)])
    path = tmp_path / "checkpoint.safetensors"
    moments = random.Random(8)
    newest = 0
    for _ in range(15):
        pid = os.fork()
        if pid == 0:
            _save_forever(checkpoint, path, newest + 1)
        time.sleep(moments.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if path.exists():
            stored = ckpt.load(path)
            assert stored.progress.samples_seen >= newest  # never an older file, never half of one
            assert torch.equal(stored.tensors.weights, checkpoint.tensors.weights)
            newest = stored.progress.samples_seen
    left = sorted(p.name for p in tmp_path.iterdir())
    # kills landed mid-save (each leaves its hidden temporary file) and between saves
    assert any(name.endswith(".tmp") for name in left) and newest > 5
    assert [name for name in left if not name.startswith(".")] == [path.name]


def _interrupt_at(samples: set[int], signum: int = signal.SIGINT):
    """A progress callback that signals this process once training reaches each of ``samples``."""
    def on_progress(update: service.ProgressUpdate) -> None:
        if update.phase == "train" and update.done in samples:
            samples.discard(update.done)
            signal.raise_signal(signum)
    return on_progress


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> tuple[cfg.Config, Path]:
    """Two epochs of 60 images, scored every 16 and saved every 24, the learning rates halved
    for the second: a config, and the final checkpoint of that run never interrupted.
    Presentations of 100 ms, so that neurons spike and learn (25 ms leave them silent)."""
    root = tmp_path_factory.mktemp("short")
    write_mnist_idx(root / "data", n_train=60, n_test=20)
    config = tiny_config(root, n_train=60, n_test=20, epochs=2, update_interval=16, checkpoint_every=24,
                         nu_decay=0.5, time=100)
    torch.set_num_threads(1)
    trained = service.train(config, out=root / "reference")
    reference = Path(trained.checkpoint)
    assert float(ckpt.load(reference).tensors.theta.max()) > 0
    assert trained.test_accuracy.all_activity >= 0.5  # it learned the bars (chance: 0.1)
    return config, reference


@pytest.mark.parametrize("stops", [[44], [60], [88], [24, 100]],
                         ids=["mid-epoch-0", "epoch-end", "mid-epoch-1", "twice"])
def test_resume_after_interrupts_equals_the_uninterrupted_run(short_run, tmp_path, stops):
    """Stops mid-window (labels, window and position all matter), at an epoch's end, and
    twice (once at a periodic checkpoint)."""
    config, reference = short_run
    run_dir = tmp_path / "run"
    pending = set(stops)

    def run() -> service.TrainResult:
        return service.train(config, out=run_dir, on_progress=_interrupt_at(pending))

    for stop in stops:
        with pytest.raises(service.Interrupted) as stopped:
            run()
        checkpoint = stopped.value.checkpoint
        assert stopped.value.exit_code == 130
        assert ckpt.load(checkpoint).progress.samples_seen == stop
        assert status_of(run_dir)["state"] == "interrupted"

        def run() -> service.TrainResult:
            return service.train(resume=checkpoint, on_progress=_interrupt_at(pending))

    result = run()
    assert not pending and result.samples_seen == 120
    assert_same_checkpoint(Path(result.checkpoint), reference)


def test_signal_while_labelling_keeps_the_trained_network(short_run, tmp_path):
    """After the last batch, train labels the neurons and tests them (minutes on full MNIST):
    a signal then stops it too, with a checkpoint of the finished training to resume from."""
    config, reference = short_run

    def on_progress(update: service.ProgressUpdate) -> None:
        if update.phase == "label" and update.done == 2 * config.batch_size:
            signal.raise_signal(signal.SIGTERM)

    def unhandled(signum: int, frame) -> None:
        raise AssertionError("train let SIGTERM through while labelling")

    outside = signal.signal(signal.SIGTERM, unhandled)  # what a plain SIGTERM would do: the run lost
    try:
        with pytest.raises(service.Interrupted) as stopped:
            service.train(config, out=tmp_path / "run", on_progress=on_progress)
    finally:
        signal.signal(signal.SIGTERM, outside)
    assert stopped.value.exit_code == 143
    progress = ckpt.load(stopped.value.checkpoint).progress
    assert (progress.epoch, progress.samples_seen, progress.finished) == (2, 120, False)
    result = service.train(resume=stopped.value.checkpoint)
    assert_same_checkpoint(Path(result.checkpoint), reference)


def test_an_error_while_labelling_keeps_the_trained_network_to_resume(short_run, tmp_path, monkeypatch):
    """A run that saves only at its end (checkpoint_every: 0) and fails after training
    keeps the trained network: --resume labels and tests it, training nothing again."""
    from snnctl.service import readouts

    config, reference = short_run
    config = config.replace(checkpoint_every=0)
    def failing(*args) -> None:
        raise SnnctlError("boom")

    fit = readouts.fit_network_readout
    monkeypatch.setattr(readouts, "fit_network_readout", failing)
    notices: list[str] = []
    with pytest.raises(SnnctlError, match="boom"):
        service.train(config, out=tmp_path / "run", notice=notices.append)
    saved = tmp_path / "run" / "checkpoint.safetensors"
    progress = ckpt.load(saved).progress
    assert (progress.epoch, progress.samples_seen, progress.finished) == (2, 120, False)
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "failed"
    assert f"snnctl train --resume {saved} labels and tests it again" in notices[-1]
    monkeypatch.setattr(readouts, "fit_network_readout", fit)
    presented = []
    result = service.train(resume=saved, on_progress=lambda u: presented.append(u.phase))
    assert "train" not in presented and result.images_trained == 0
    tensors, expected = tensors_and_metadata(Path(result.checkpoint))[0], tensors_and_metadata(reference)[0]
    assert tensors == expected  # the network trained once, labelled and read out as the run never failed
    assert ckpt.load(Path(result.checkpoint)).info["test_accuracy"] == ckpt.load(reference).info["test_accuracy"]


# ---------------------------------------------------------------- full disk


class FullDiskOs:
    """The ``os`` module as :mod:`snnctl.checkpoint` sees it, on a disk that is full once
    ``full()`` says so: flushing a file's data raises ENOSPC, as it does on a real disk."""

    def __init__(self, full) -> None:
        self.full = full

    def __getattr__(self, name: str):
        return getattr(os, name)

    def fsync(self, fd: int) -> None:
        if self.full() and stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)


def test_full_disk_during_training_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    write_mnist_idx(tmp_path / "data", n_train=60, n_test=20)
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, n_train=60, n_test=20, checkpoint_every=24)))
    run_dir = tmp_path / "run"
    # the disk fills up once the first periodic checkpoint and its status are written
    status = run_dir / service.STATUS_NAME
    monkeypatch.setattr(files, "os", FullDiskOs(lambda: status.exists() and status_of(run_dir)["samples_seen"] > 0))
    result = runner.invoke(app, ["train", str(params), "--out", str(run_dir)])

    checkpoint = run_dir / ckpt.CHECKPOINT_NAME
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [f"error: {checkpoint}: not saved (No space left on device); "
                                          "any previous file there is unchanged"]
    assert ckpt.load(checkpoint).progress.samples_seen == 24
    assert status_of(run_dir)["samples_seen"] == 24
    assert status_of(run_dir)["state"] == "failed" and "No space left" in status_of(run_dir)["error"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_status_says_running_from_the_first_image_without_periodic_saves(tmp_path):
    write_mnist_idx(tmp_path / "data", n_train=24, n_test=8)
    config = tiny_config(tmp_path, n_train=24, n_test=8, checkpoint_every=0)
    run_dir, seen = tmp_path / "run", []

    def on_progress(update: service.ProgressUpdate) -> None:
        if update.phase == "train" and not seen:
            seen.append(status_of(run_dir))

    service.train(config, out=run_dir, on_progress=on_progress)
    assert seen and seen[0]["state"] == "running" and seen[0]["checkpoint"] == str(run_dir / ckpt.CHECKPOINT_NAME)
    assert seen[0]["samples_seen"] == 0
    assert status_of(run_dir)["state"] == "finished"


def test_full_disk_while_writing_status_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "os", FullDiskOs(lambda: True))
    path = tmp_path / service.STATUS_NAME
    path.write_text('{"state": "running"}')
    with pytest.raises(SnnctlError, match="No space left on device") as error:
        files.write_atomic(path, b'{"state": "finished"}')
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    assert path.read_text() == '{"state": "running"}'
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 256 KiB file system (needs the right to mount; skipped elsewhere)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_really_full_disk_keeps_the_previous_checkpoint(small_tmpfs):
    config = cfg.Config().replace(n_neurons=60)  # 200 KB: one fits, a second beside it does not
    path = small_tmpfs / "checkpoint.safetensors"
    ckpt.save(ckpt.Checkpoint(config, net.initial_tensors(config), [str(d) for d in range(10)]), path)
    before = path.read_bytes()
    newer = ckpt.Checkpoint(config, net.initial_tensors(config.replace(seed=7)), [str(d) for d in range(10)])
    with pytest.raises(SnnctlError, match="No space left on device") as error:
        ckpt.save(newer, path)
    assert str(error.value) == f"{path}: not saved (No space left on device); any previous file there is unchanged"
    assert path.read_bytes() == before
    assert [p.name for p in small_tmpfs.iterdir()] == [path.name]


# ---------------------------------------------------------------- no overwriting, shared files


def test_checkpoints_are_readable_by_others_as_any_new_file(tmp_path):
    config = cfg.Config().replace(n_neurons=4)
    path = ckpt.save(ckpt.Checkpoint(config, net.initial_tensors(config), [str(d) for d in range(10)]),
                     tmp_path / "shared.safetensors")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("command", [
    ["train", "--resume", "{checkpoint}", "--out", "{existing_dir}"],
    ["evaluate", "{checkpoint}", "--predictions", "{existing_file}"],
    ["assign", "{checkpoint}", "--out", "{existing_file}"],
], ids=["train", "evaluate", "assign"])
def test_existing_outputs_are_refused_without_force(checkpoint_copy, tmp_path, command):
    existing_dir = tmp_path / "run"
    existing_dir.mkdir()
    (existing_dir / "notes.txt").write_text("mine")
    existing_file = tmp_path / "existing.out"
    existing_file.write_text("mine")
    before = checkpoint_copy.read_bytes()
    args = [part.format(checkpoint=checkpoint_copy, existing_dir=existing_dir, existing_file=existing_file)
            for part in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert "--force" in line and (str(existing_dir) in line or str(existing_file) in line)
    assert existing_file.read_text() == "mine" and (existing_dir / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in existing_dir.iterdir()) == ["notes.txt"]
    assert checkpoint_copy.read_bytes() == before


# ---------------------------------------------------------------- checkpoints from others


@pytest.mark.slow
def test_a_huge_declared_tensor_is_refused_before_it_is_read(tmp_path, checkpoint_copy):
    """A header may declare a tensor far larger than its parameters imply: the reader says
    so without reading it (a subprocess measures the peak memory of the attempt)."""
    from safetensors import safe_open

    with safe_open(str(checkpoint_copy), framework="np") as reader:
        metadata = reader.metadata()
        arrays = {name: reader.get_tensor(name) for name in reader.keys()}
    n_inputs, n_neurons = arrays["input_to_exc.weight"].shape
    big = (n_inputs, 200_000)  # 627 MB of float32, far more neurons than the stored parameters
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, array in arrays.items():
        if name != "input_to_exc.weight":
            header[name] = {"dtype": {"float32": "F32", "int64": "I64", "int32": "I32"}[array.dtype.name],
                            "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
            offset += array.nbytes
    size = 4 * big[0] * big[1]
    header["input_to_exc.weight"] = {"dtype": "F32", "shape": list(big), "data_offsets": [offset, offset + size]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        for name, array in arrays.items():
            if name != "input_to_exc.weight":
                handle.write(np.ascontiguousarray(array).tobytes())
        handle.truncate(handle.tell() + size)  # sparse: no disk used
    probe = ("import resource, sys\nfrom snnctl import checkpoint\nfrom snnctl.errors import SnnctlError\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "try:\n    checkpoint.read(sys.argv[1])\nexcept SnnctlError as error:\n    print(error)\n"
             "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, env=ENV, timeout=120)
    message, grown_mb = done.stdout.splitlines()
    assert message == (f"{path}: tensor 'input_to_exc.weight' has shape {list(big)}, "
                       f"the stored parameters imply [{n_inputs}, {n_neurons}]")
    assert int(grown_mb) < 50


def test_resume_refuses_a_damaged_checkpoint_with_one_line(checkpoint_copy):
    blob = checkpoint_copy.read_bytes()
    checkpoint_copy.write_bytes(blob[:len(blob) // 2])  # cut short, as a copy that broke off
    result = runner.invoke(app, ["train", "--resume", str(checkpoint_copy)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {checkpoint_copy}: not a readable safetensors file")


# ---------------------------------------------------------------- resume keeps the run it continues


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Path:
    """A run directory stopped mid-epoch: its checkpoint has finished: false and a window."""
    root = tmp_path_factory.mktemp("interrupted")
    write_mnist_idx(root / "data", n_train=24, n_test=8)
    config = tiny_config(root, n_train=24, n_test=8, update_interval=12)
    with pytest.raises(service.Interrupted):
        service.train(config, out=root / "run", on_progress=_interrupt_at({8}))
    stored = ckpt.load(root / "run" / ckpt.CHECKPOINT_NAME)
    assert not stored.progress.finished and stored.window is not None
    return root / "run"


@pytest.fixture
def run_copy(interrupted_run, tmp_path) -> Path:
    """A private copy of the interrupted run directory (its data folder stays shared)."""
    import shutil

    return Path(shutil.copytree(interrupted_run, tmp_path / "run"))


def run_files(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(run_dir.iterdir()) if path.is_file()}


@pytest.mark.parametrize("override, key", [
    ("input_size=20", "input_size"), ("n_neurons=30", "n_neurons"), ("model=diehl-cook-2015-v2", "model"),
    ("seed=7", "seed"), ("update_interval=7", "update_interval"), ("encoder=BernoulliEncoder", "encoder"),
])
def test_resume_refuses_a_key_that_changes_the_network_and_loses_nothing(run_copy, override, key):
    before = run_files(run_copy)
    checkpoint = run_copy / ckpt.CHECKPOINT_NAME
    result = runner.invoke(app, ["train", "--resume", str(checkpoint), "--set", override])
    assert_one_line_error(result, 2, key, "cannot change on resume", "epochs")
    assert run_files(run_copy) == before  # checkpoint byte-identical, status still "interrupted"
    assert status_of(run_copy)["state"] == "interrupted"


def test_resume_takes_the_same_data_folder_named_relatively(run_copy, monkeypatch):
    """The checkpoint records its data_dir as an absolute path; the same folder named from
    here (``--set data_dir=data``, or a parameter file's ``./data``) is no change."""
    stored = ckpt.load(run_copy / ckpt.CHECKPOINT_NAME)
    data_dir = Path(stored.config.data_dir)
    monkeypatch.chdir(data_dir.parent)
    parameters = run_copy / "parameters.yaml"
    parameters.write_text(parameters.read_text().replace(f"data_dir: {data_dir}", f"data_dir: ./{data_dir.name}"))
    assert f"data_dir: ./{data_dir.name}" in parameters.read_text()
    result = runner.invoke(app, ["train", str(parameters), "--resume", str(run_copy / ckpt.CHECKPOINT_NAME),
                                 "--set", f"data_dir={data_dir.name}", "--json"])
    assert result.exit_code == 0, result.output
    resumed = ckpt.load(run_copy / ckpt.CHECKPOINT_NAME)
    assert resumed.progress.finished and resumed.config.data_dir == str(data_dir)
    moved = runner.invoke(app, ["train", "--resume", str(run_copy / ckpt.CHECKPOINT_NAME), "--set", "data_dir=elsewhere"])
    assert_one_line_error(moved, 2, "data_dir", "cannot change on resume")


def test_resume_into_a_forced_out_replaces_the_run_there_and_keeps_its_own(run_copy, tmp_path):
    stored = ckpt.load(run_copy / ckpt.CHECKPOINT_NAME)
    other = tmp_path / "other"
    service.train(stored.config.replace(seed=5), out=other)
    replaced = {path.name for path in other.glob("events.out.tfevents.*")}
    own = run_files(run_copy)
    result = runner.invoke(app, ["train", "--resume", str(run_copy / ckpt.CHECKPOINT_NAME), "--out", str(other),
                                 "--force", "--json"])
    assert result.exit_code == 0, result.output
    assert replaced and not replaced & {path.name for path in other.glob("events.out.tfevents.*")}
    assert ckpt.load(other / ckpt.CHECKPOINT_NAME).config.seed == stored.config.seed
    assert run_files(run_copy) == own  # the checkpoint it continued, and its directory, untouched


def test_resumable_keys_are_documented():
    documented = (Path(__file__).parents[1] / "docs" / "parameters.md").read_text()
    section = documented.split("## Changing parameters on resume", 1)[1]
    assert all(f"`{key}`" in section for key in choices.RESUMABLE_KEYS)


def test_resume_continues_the_file_it_was_given(run_copy):
    other = run_copy / "other.safetensors"
    (run_copy / ckpt.CHECKPOINT_NAME).rename(other)
    foreign = run_copy / ckpt.CHECKPOINT_NAME
    foreign.write_bytes(b"another run's checkpoint")
    result = runner.invoke(app, ["train", "--resume", str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"] == str(other)
    assert foreign.read_bytes() == b"another run's checkpoint"
    assert ckpt.load(other).progress.finished
    assert status_of(run_copy) | {"state": "finished", "checkpoint": str(other)} == status_of(run_copy)
    assert not (run_copy / ".snnctl.lock").exists()


# ---------------------------------------------------------------- one run per directory


def test_a_live_run_holds_its_directory(run_copy):
    lock = run_copy / ".snnctl.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": __import__("socket").gethostname(), "started": "now"}))
    before = run_files(run_copy)
    result = runner.invoke(app, ["train", "--resume", str(run_copy / ckpt.CHECKPOINT_NAME)])
    assert_one_line_error(result, 2, str(run_copy), "in use", f"pid {os.getpid()}")
    assert run_files(run_copy) == before


def test_a_lock_of_another_host_says_how_to_remove_it(run_copy):
    """A run of another host (a shared file system) cannot be checked from here: its lock
    holds, and the error says how to remove it once that run is known to be gone."""
    lock = run_copy / ".snnctl.lock"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.invalid", "started": "earlier"}))
    before = run_files(run_copy)
    result = runner.invoke(app, ["train", "--resume", str(run_copy / ckpt.CHECKPOINT_NAME)])
    assert_one_line_error(result, 2, str(run_copy), "in use", "on elsewhere.invalid", f"remove its lock: rm {lock}")
    assert run_files(run_copy) == before


def test_a_stale_lock_is_reported_and_taken_over(run_copy):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = run_copy / ".snnctl.lock"
    lock.write_text(json.dumps({"pid": int(gone.stdout), "host": __import__("socket").gethostname(),
                                "started": "earlier"}))
    result = runner.invoke(app, ["train", "--resume", str(run_copy / ckpt.CHECKPOINT_NAME)])
    assert result.exit_code == 0, result.output
    assert f"notice: {lock}: a stale lock" in result.stderr
    assert not lock.exists() and status_of(run_copy)["state"] == "finished"


@pytest.mark.slow
def test_two_trainings_into_one_directory_one_is_refused(long_run, tmp_path):
    params, _ = long_run
    run_dir = tmp_path / "cc"
    first = snnctl("train", str(params), "--out", str(run_dir), "--set", "n_train=80", "--json", cwd=tmp_path)
    time.sleep(0.5)
    second = snnctl("train", str(params), "--out", str(run_dir), "--set", "n_train=80", "--set", "seed=9",
                    "--json", cwd=tmp_path)
    (code1, out1, err1), (code2, out2, err2) = finish(first), finish(second)
    assert sorted([code1, code2]) == [0, 2], (err1, err2)
    winner, loser_err = (out1, err2) if code1 == 0 else (out2, err1)
    [line] = [line for line in loser_err.splitlines() if line.startswith("error:")]
    assert str(run_dir) in line and ("in use" in line or "not an empty directory" in line)
    seed = ckpt.load(json.loads(winner)["checkpoint"]).config.seed
    assert seed == (1234 if code1 == 0 else 9)
    assert not (run_dir / ".snnctl.lock").exists()


# ---------------------------------------------------------------- one line, not a traceback


@pytest.mark.parametrize("override, words", [
    ("seed=-1", ["seed", ">= 0"]), ("seed=99999999999999999999", ["seed", "< 4294967296"]),
    ("n_neurons=100000", ["n_neurons", "GB of memory"]), ("input_size=100000", ["input_size", "GB of memory"]),
    ("name=../../escaped", ["name", "one folder name"]), ("name=/tmp/absolute", ["name", "one folder name"]),
])
def test_bad_overrides_are_one_line_before_a_run_directory_is_made(tmp_path, override, words):
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path, name="run")))
    result = runner.invoke(app, ["train", str(params), "--set", override])
    assert_one_line_error(result, 2, *words)
    assert not (tmp_path / "logs").exists() and not (tmp_path.parent / "escaped").exists()


def test_an_astronomical_network_in_a_file_is_one_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path)).replace("n_neurons: 25", "n_neurons: 1.0e+29"))
    result = runner.invoke(app, ["train", str(params)])
    assert_one_line_error(result, 2, "n_neurons", "GB of memory")


@pytest.mark.parametrize("where", ["out_is_a_file", "out_below_a_file", "log_dir_below_a_file"])
def test_unusable_run_directories_are_one_line(tmp_path, where):
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path)))
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    args = {"out_is_a_file": ["--out", str(a_file)], "out_below_a_file": ["--out", str(a_file / "run")],
            "log_dir_below_a_file": ["--set", f"log_dir={a_file}"]}[where]
    result = runner.invoke(app, ["train", str(params), *args])
    assert_one_line_error(result, 2, str(a_file))
    assert a_file.read_text() == "mine"


def test_a_read_only_file_system_is_one_line(tmp_path, monkeypatch):
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(tiny_config(tmp_path)))

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = runner.invoke(app, ["train", str(params), "--out", str(tmp_path / "run")])
    assert_one_line_error(result, 2, str(tmp_path / "run"), "Read-only file system")


def test_a_failing_tensorboard_writer_is_one_line_and_the_run_failed(run_copy, monkeypatch):
    from tensorboard.summary.writer import record_writer

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(record_writer.RecordWriter, "write", full)
    checkpoint = run_copy / ckpt.CHECKPOINT_NAME
    before = checkpoint.read_bytes()
    result = runner.invoke(app, ["train", "--resume", str(checkpoint)])
    assert_one_line_error(result, 1, "TensorBoard log not written", "No space left on device")
    assert "Exception in thread" not in result.stderr
    assert checkpoint.read_bytes() == before
    status = status_of(run_copy)
    assert status["state"] == "failed" and "No space left on device" in status["error"]
    assert not (run_copy / ".snnctl.lock").exists()


def test_a_resume_whose_data_is_unreadable_is_one_line_and_the_run_failed(tmp_path):
    write_mnist_idx(tmp_path / "data", n_train=24, n_test=8)
    with pytest.raises(service.Interrupted):
        service.train(tiny_config(tmp_path, n_train=24, n_test=8, update_interval=12), out=tmp_path / "run",
                      on_progress=_interrupt_at({8}))
    damaged = tmp_path / "data" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(b"not an IDX file")
    checkpoint = tmp_path / "run" / ckpt.CHECKPOINT_NAME
    result = runner.invoke(app, ["train", "--resume", str(checkpoint)])
    assert_one_line_error(result, 1, "t10k-labels-idx1-ubyte", "cannot read IDX file")
    status = status_of(tmp_path / "run")
    assert status["state"] == "failed" and "t10k-labels-idx1-ubyte" in status["error"]
    assert not (tmp_path / "run" / ".snnctl.lock").exists()


def test_json_errors_are_a_document_on_stdout(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path / "missing.safetensors"), "--json"])
    assert_one_line_error(result, 1, "no such checkpoint file")
    assert json.loads(result.stdout) == {"error": f"{tmp_path / 'missing.safetensors'}: no such checkpoint file",
                                         "exit_code": 1}


# ---------------------------------------------------------------- checkpoints resume relies on


def rewrite_checkpoint(path: Path, metadata: dict | None = None, drop: tuple[str, ...] = (),
                       change: dict | None = None) -> None:
    """The checkpoint at ``path`` with metadata entries replaced, tensors dropped or changed."""
    from safetensors.numpy import save_file
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as reader:
        stored = dict(reader.metadata())
        arrays = {name: reader.get_tensor(name) for name in reader.keys() if name not in drop}
    arrays.update(change or {})
    save_file(arrays, str(path), metadata={**stored, **(metadata or {})})


def test_a_stored_seed_out_of_range_is_refused_by_every_command(checkpoint_copy):
    stored = json.loads(tensors_and_metadata(checkpoint_copy)[1]["config"])
    rewrite_checkpoint(checkpoint_copy, {"config": json.dumps({**stored, "seed": -1})})
    for command in (["inspect"], ["evaluate"], ["visualize", "confusion"]):
        result = runner.invoke(app, [*command, str(checkpoint_copy)])
        assert_one_line_error(result, 1, str(checkpoint_copy), "seed")


@pytest.mark.parametrize("case, words", [
    ("samples_seen", ["samples_seen", "out of range"]),
    ("position", ["position", "beyond 'samples_seen'"]),
    ("labels", ["labels.rates", "missing"]),
])
def test_inspect_refuses_what_resume_could_not_use(checkpoint_copy, case, words):
    if case == "samples_seen":
        rewrite_checkpoint(checkpoint_copy, {"samples_seen": str(10**23), "finished": "false"})
    elif case == "position":
        rewrite_checkpoint(checkpoint_copy, {"samples_seen": "10", "position": "20", "finished": "false"})
    else:
        rewrite_checkpoint(checkpoint_copy, drop=("labels.rates",))
    before = checkpoint_copy.read_bytes()
    for command in (["inspect", str(checkpoint_copy)], ["train", "--resume", str(checkpoint_copy)]):
        assert_one_line_error(runner.invoke(app, command), 1, *words)
    assert checkpoint_copy.read_bytes() == before


def test_inspect_flags_weights_outside_wmin_wmax(checkpoint_copy):
    from safetensors import safe_open

    with safe_open(str(checkpoint_copy), framework="np") as reader:
        w = reader.get_tensor("input_to_exc.weight").copy()
    w[0, 0] = 3.5
    rewrite_checkpoint(checkpoint_copy, change={"input_to_exc.weight": w})
    result = runner.invoke(app, ["inspect", str(checkpoint_copy), "--json"])
    assert result.exit_code == 0, result.output
    [warning] = json.loads(result.stdout)["warnings"]
    assert "outside [wmin, wmax]" in warning and "3.5" in warning
    assert result.stderr.startswith("warning: ")


@pytest.mark.slow
def test_three_quick_ctrl_c_leave_no_traceback(long_run, tmp_path):
    process, run_dir = start_long_run(long_run[0], tmp_path)
    for _ in range(3):
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)
    code, stdout, stderr = finish(process)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.splitlines()[-1].startswith("error: interrupted by SIGINT")
    assert ckpt.load(run_dir / ckpt.CHECKPOINT_NAME).progress.samples_seen > 0


# ---------------------------------------------------------------- data


def test_evaluate_refuses_a_data_dir_that_does_not_exist(checkpoint_copy, tmp_path):
    result = runner.invoke(app, ["evaluate", str(checkpoint_copy), "--data-dir", str(tmp_path / "nonexistent")])
    assert_one_line_error(result, 2, "--data-dir", str(tmp_path / "nonexistent"))


@pytest.fixture
def interrupted_mammo(tmp_path) -> tuple[Path, Path]:
    """A MAMMO run stopped mid-epoch, and its data folder (two classes of 12 images)."""
    from test_images import class_folders, mammo_config

    data_dir = class_folders(tmp_path / "mammo", {"benign": 12, "malignant": 12})
    config = mammo_config(tmp_path, data_dir, test_fraction=0.25)
    with pytest.raises(service.Interrupted):
        service.train(config, out=tmp_path / "run", on_progress=_interrupt_at({8}))
    return tmp_path / "run", data_dir


def test_mammo_resume_keeps_its_recorded_split(interrupted_mammo):
    from test_images import class_folders

    run_dir, data_dir = interrupted_mammo
    split_before = (run_dir / "split.json").read_bytes()
    recorded = json.loads(split_before)
    held_out = {entry["file"] for entry in recorded["test"]}
    class_folders(data_dir.parent / "more", {"benign": 6, "malignant": 6}, seed=3)
    for new in (data_dir.parent / "more").rglob("*.png"):
        new.rename(data_dir / new.parent.name / f"new-{new.name}")
    removed = data_dir / recorded["train"][0]["file"]
    kept = removed.read_bytes()
    removed.unlink()
    checkpoint = run_dir / ckpt.CHECKPOINT_NAME
    before = checkpoint.read_bytes()
    images = run_dir / "split-images.safetensors"
    images_before = (images.stat().st_ino, images.stat().st_mtime_ns)

    result = runner.invoke(app, ["train", "--resume", str(checkpoint)])
    assert_one_line_error(result, 1, str(removed), "no longer in the data folder")
    assert checkpoint.read_bytes() == before

    removed.write_bytes(kept)
    result = runner.invoke(app, ["train", "--resume", str(checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    assert "12 image(s) added" in result.stderr and "left out" in result.stderr
    assert json.loads(result.stdout)["n_test"] == len(held_out)
    assert (run_dir / "split.json").read_bytes() == split_before
    # the decoded images were read from the run's file, which is left as it was, not written again
    assert (images.stat().st_ino, images.stat().st_mtime_ns) == images_before


def test_the_recorded_split_of_a_resumed_run_is_read_once(interrupted_mammo, monkeypatch):
    from snnctl import data
    from snnctl.data import manifest

    run_dir, _ = interrupted_mammo
    reads = []
    real = manifest.read_versioned_json
    monkeypatch.setattr(manifest, "read_versioned_json", lambda path, *a: reads.append(path) or real(path, *a))
    config = ckpt.load(run_dir / ckpt.CHECKPOINT_NAME).config
    splits = data.load_recorded_split(run_dir, config, lambda message: None)
    assert len(splits.test) == len(json.loads((run_dir / "split.json").read_text())["test"])
    assert reads == [run_dir / "split.json"]


def test_split_paths_outside_the_data_folder_are_refused(interrupted_mammo):
    run_dir, data_dir = interrupted_mammo
    manifest = json.loads((run_dir / "split.json").read_text())
    manifest["test"][0]["file"] = "../../../etc/passwd"
    (run_dir / "split.json").write_text(json.dumps(manifest))
    for command in (["train", "--resume"], ["assign"]):
        result = runner.invoke(app, [*command, str(run_dir / ckpt.CHECKPOINT_NAME)])
        assert_one_line_error(result, 1, "../../../etc/passwd", "not a file inside the data folder")


def test_skipped_images_are_warnings(tmp_path):
    from test_images import class_folders, mammo_config

    data_dir = class_folders(tmp_path / "mammo", {"benign": 6, "malignant": 6})
    (data_dir / "benign" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    params = tmp_path / "params.yaml"
    params.write_text(cfg.dump_yaml(mammo_config(tmp_path, data_dir, test_fraction=0.25)))
    result = runner.invoke(app, ["train", str(params), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "broken.png" in warnings[0] and "skipped 1 of 13" in warnings[1]
    assert "notice: skipped" not in result.stderr
