"""Peak memory of `snnctl evaluate` on 1,000 and on 10,000 images.

Each evaluation runs in a fresh process (peak RSS only ever grows), on synthetic MNIST IDX
files holding exactly that many test images and a small checkpoint, all written to a
temporary folder, so nothing here needs the network. Prints, for each size: resident
memory before the evaluation (Python, torch, numba, the checkpoint), the peak during it,
the difference, and the two arrays that grow with the number of images: the decoded
images (uint8, n x 784) and the spike counts (int32, n x neurons).

    .venv/bin/python bench/memory.py [--sizes 1000 10000] [--neurons 100]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tests' IDX writer (synthetic digits, the real file layout); bench reuses it.
sys.path.insert(0, str(ROOT / "tests"))

WARM_UP = 16


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss can report a forking parent's)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024  # kB


def current_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def data_dir(folder: Path, n: int) -> Path:
    return folder / f"data-{n}"


def prepare(folder: Path, sizes: list[int], n_neurons: int) -> Path:
    """IDX files for each size (and a tiny set to warm up on), and a checkpoint with labels."""
    import torch

    from conftest import write_mnist_idx
    from snnctl import checkpoint as ckpt
    from snnctl import config as cfg
    from snnctl import data
    from snnctl.readout import vote
    from snnctl import network as net

    for n in [WARM_UP, *sizes]:
        write_mnist_idx(data_dir(folder, n), n_train=20, n_test=n)
    config = cfg.Config().replace(n_neurons=n_neurons, time=100, batch_size=16, n_train=None, n_test=None,
                                  data_dir=str(data_dir(folder, WARM_UP)), device="cpu")
    generator = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 5, (200, n_neurons), generator=generator)
    state = vote.assign(counts, torch.arange(200) % 10, 10, config.reduction)
    path = folder / "checkpoint.safetensors"
    ckpt.save(ckpt.Checkpoint(config, net.initial_tensors(config), data.MNIST_CLASSES, state), path)
    return path


def measure(checkpoint: Path, images: Path) -> None:
    """In the child: evaluate the test images in ``images``; print resident MB before the
    evaluation and at its peak, and the number of images."""
    from snnctl import service

    service.evaluate(checkpoint)  # its own WARM_UP images: imports, numba, first allocations
    before = current_mb()
    result = service.evaluate(checkpoint, data_dir=str(images))
    print(f"{before:.1f} {peak_mb():.1f} {result.n_samples}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--child", nargs=2, metavar=("CHECKPOINT", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(Path(args.child[0]), Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = prepare(Path(folder), args.sizes, args.neurons)
        print(f"evaluate, {args.neurons} neurons, time 100, batch 16 (peak RSS of a fresh process)")
        print(f"{'images':>8} {'before MB':>10} {'peak MB':>9} {'growth MB':>10} {'images MB':>10} {'counts MB':>10}")
        for n in args.sizes:
            child = subprocess.run([sys.executable, __file__, "--child", str(checkpoint), str(data_dir(Path(folder), n))],
                                   capture_output=True, text=True, check=True)
            before, peak, seen = (float(value) for value in child.stdout.split())
            images_mb, counts_mb = seen * 28 * 28 / 2**20, seen * args.neurons * 4 / 2**20
            print(f"{seen:>8.0f} {before:>10.1f} {peak:>9.1f} {peak - before:>10.1f} {images_mb:>10.1f} {counts_mb:>10.1f}")


if __name__ == "__main__":
    main()
