"""The values each parameter may take: the choices of the keys that name a rule, a mode or
a file layout, and the bounds of the numbers (checked by :func:`snnctl.config.validate`;
the types come from the annotations of :class:`snnctl.config.Config`). Also which keys act
on the drive only and which a resumed run may change."""

from __future__ import annotations

from snnctl.original_layout import ENCODERS

TASKS = ("MNIST", "MAMMO", "FASHION")  # FASHION: Fashion-MNIST, read like MNIST
# The original project called its mammography task after the INbreast data set.
TASK_ALIASES = {"INBREAST": "MAMMO"}
REDUCTIONS = ("sum", "mean", "max")
MODELS = ("diehl-cook-2015", "diehl-cook-2015-v2")
ENGINES = ("auto", "fast", "bindsnet")
DEVICES = ("auto", "cpu", "cuda")
ONE_SPIKE_RULES = ("bindsnet", "off", "winner")
READOUTS = ("vote", "linear")
# What the linear readout reads for each image (snnctl.readout.features, docs/readout.md).
READOUT_FEATURES = ("counts", "drive")
# Where a layer of windows pools each neuron's drive, and how many features that gives a
# neuron (snnctl.readout.features): its largest over the image; and over the image's centre;
# and the mean over each of the two as well.
FEATURES_PER_NEURON = {"global": 1, "centre": 2, "centre-mean": 4}
READOUT_POOLINGS = tuple(FEATURES_PER_NEURON)
RESIZE_MODES = ("squash", "pad")
# How gray values become rates (snnctl.data.encodings, docs/mammo.md).
NORMALIZATIONS = ("none", "percentile")
# Input populations per pixel of each encoding: the grey level; ON and OFF; all three.
CHANNELS = {"rate": 1, "on-off": 2, "rate+on-off": 3}
ENCODINGS = tuple(CHANNELS)


# Allowed values and bounds, checked by validate(); types come from the annotations.
CHOICES: dict[str, tuple[str, ...]] = {
    "task": TASKS,
    "reduction": REDUCTIONS,
    "stdp_reduction": REDUCTIONS,
    "model": MODELS,
    "engine": ENGINES,
    "device": DEVICES,
    "one_spike": ONE_SPIKE_RULES,
    "resize": RESIZE_MODES,
    "encoder": ENCODERS,
    "normalize": NORMALIZATIONS,
    "encoding": ENCODINGS,
    "readout": READOUTS,
    "readout_features": READOUT_FEATURES,
    "readout_pooling": READOUT_POOLINGS,
}
# (key, lower bound, inclusive?)
LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "time": (0, False),
    "dt": (0, False),
    "intensity": (0, False),
    "n_classes": (2, True),
    "batch_size": (1, True),
    "n_neurons": (1, True),
    "input_size": (1, True),
    "theta_plus": (0, True),
    "inh": (0, True),
    "exc": (0, True),
    "epochs": (0, True),
    "n_train": (1, True),
    "n_test": (1, True),
    "checkpoint_every": (0, True),
    "nu_pre": (0, True),
    "nu_post": (0, True),
    "nu_decay": (0, False),
    "nu_post_theta": (0, False),
    "average_weights": (0, False),
    "input_length": (0, False),
    "gamma": (0, False),
    "norm": (0, False),
    "tc_theta_decay": (0, False),
    "update_interval": (1, True),
    "min_spikes": (0, True),
    "max_retries": (0, True),
    "intensity_step": (0, True),
    "test_fraction": (0, False),
    "seed": (0, True),
    "folds": (2, True),
    "fold": (0, True),
    "readout_max_train": (2, True),
    "networks_per_device": (1, True),
    "patch_size": (2, True),
    "readout_shift": (0, True),
    "readout_augment": (0, True),
    "windows_per_image": (1, True),
}
# Keys that act on the linear readout's input drive, and what each does: an error with other features.
DRIVE_ONLY_KEYS = {"readout_shift": "shifts the input drive",
                   "readout_augment": "fits the readout on distorted copies of the images, read through their drive",
                   "readout_pooling": "pools the input drive"}
# (key, upper bound, inclusive?): NumPy seeds its generators with unsigned 32-bit integers
UPPER_BOUNDS: dict[str, tuple[float, bool]] = {"test_fraction": (1.0, False), "seed": (2**32, False),
                                               "average_weights": (1.0, True)}

# The keys a resumed run may change (``train --resume CKPT --set KEY=VALUE``): how long it
# trains and how fast it learns, where it logs and on what it runs. Every other key shapes a
# tensor, builds the network, draws the random numbers or picks the images the checkpoint
# was trained on, so changing it would continue a different run from this one's state.
RESUMABLE_KEYS = ("epochs", "nu_pre", "nu_post", "nu_decay", "nu_post_theta", "checkpoint_every", "log_dir", "device",
                  "engine", "download", "strict", "workers", "networks_per_device")
