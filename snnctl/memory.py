"""Whether a run fits in memory, judged from its parameters before anything is allocated.

A network of ``n_neurons: 100000`` needs 40 GB for its lateral weights alone; torch would
fail deep inside an allocation with a C++ traceback, or the machine would start swapping.
:func:`check_fits` refuses such a run with the figure, before its directory is made.
"""

from __future__ import annotations

import math
import os

from snnctl.config import Config
from snnctl.errors import ConfigError

FLOAT32 = 4
# Copies of the input weights alive at the peak: the network's, the engine's working copy,
# the checkpoint's contiguous copy, and TensorBoard's receptive-field image (the grid, its
# float64 colour map and the RGB tensor: about 9 float32 slots per weight).
WEIGHT_COPIES = 12
# Per image of a batch and simulation step: the encoded input, and the neurons' state
# (voltage, threshold, trace, spikes).
STATE_PER_NEURON = 4


def estimate_bytes(config: Config) -> int:
    """A rough upper bound on the memory a training run of ``config`` allocates: its network
    tensors (:meth:`Config.tensor_shapes`, Diehl & Cook 2015: input x excitatory weights,
    with their copies, the fixed lateral connections and the adaptive thresholds), and one
    batch's input and state over its simulation steps."""
    sizes = {name: math.prod(shape) for name, shape in config.tensor_shapes().items()}
    weights = sizes.pop("input_to_exc.weight") * WEIGHT_COPIES + sum(sizes.values())
    batch_state = config.batch_size * config.steps * (config.n_inputs + STATE_PER_NEURON * config.n_neurons)
    return (weights + batch_state) * FLOAT32


def available_bytes() -> int | None:
    """Memory a new allocation can get without swapping: psutil's figure if it is installed,
    else the kernel's MemAvailable, else free pages; None where none of them answers."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.3g} GB"


def check_fits(config: Config, available: int | None = None) -> None:
    """Refuse (one ConfigError line naming the figures) a run whose estimate exceeds the
    available memory."""
    needed = estimate_bytes(config)
    available = available_bytes() if available is None else available
    if available is not None and needed > available:
        raise ConfigError(f"n_neurons: {config.n_neurons}, input_size: {config.input_size}, batch_size: "
                          f"{config.batch_size}, time: {config.time}: the run needs about {_gigabytes(needed)} "
                          f"of memory, {_gigabytes(available)} is available")
