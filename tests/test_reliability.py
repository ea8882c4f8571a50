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

from snnctl import checkpoint as ckpt
from snnctl import config as cfg
from snnctl import files
from snnctl import network as net
from snnctl import service
from snnctl.cli import app
from snnctl.errors import SnnctlError

from conftest import tiny_config, write_mnist_idx

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
    run_dir = tmp_path / "run"
    process = snnctl("train", str(params), "--out", str(run_dir), cwd=tmp_path)
    wait_for(run_dir / service.STATUS_NAME, process)
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
    run_dir = tmp_path / "run"
    process = snnctl("train", str(params), "--out", str(run_dir), cwd=tmp_path)
    wait_for(run_dir / service.STATUS_NAME, process)
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
    reference = Path(service.train(config, out=root / "reference").checkpoint)
    assert float(ckpt.load(reference).tensors.theta.max()) > 0
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
    monkeypatch.setattr(files, "os", FullDiskOs(lambda: (run_dir / service.STATUS_NAME).exists()))
    result = runner.invoke(app, ["train", str(params), "--out", str(run_dir)])

    checkpoint = run_dir / ckpt.CHECKPOINT_NAME
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [f"error: {checkpoint}: not saved (No space left on device); "
                                          "any previous file there is unchanged"]
    assert ckpt.load(checkpoint).progress.samples_seen == 24
    assert status_of(run_dir)["samples_seen"] == 24
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


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
