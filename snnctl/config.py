"""Typed parameters: defaults, the two YAML layouts, ``--set`` overrides and validation.

The values each key may take are in :mod:`snnctl.choices`, the checks of one value in
:mod:`snnctl.validators`, the YAML reader in
:mod:`snnctl.yaml_reader`, the original project's nested layout in
:mod:`snnctl.original_layout`.

Defaults for the keys of the original README table are that table's values; the other
keys are documented in docs/parameters.md. Every error names the file, the key, the bad
value and what is allowed, and is raised as :class:`ConfigError` (exit code 2).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from snnctl.errors import ConfigError, SnnctlError
from snnctl import validators
from snnctl.choices import (CHANNELS, CHOICES, DRIVE_ONLY_KEYS, FEATURES_PER_NEURON, LOWER_BOUNDS, RESUMABLE_KEYS,
                            TASK_ALIASES, UPPER_BOUNDS)
from snnctl.original_layout import flatten_original
from snnctl.validators import WORKERS_EXPECTED, is_worker_count, one_of, show, yaml_quoted
from snnctl.yaml_reader import parse_yaml, read_yaml_file, yaml_number

@dataclass(frozen=True)
class Config:
    """Every parameter of a run. Field order is the order of parameters.txt."""

    task: str = "MNIST"
    data_dir: str = "./data"
    log_dir: str = "./logs"
    name: str | None = None
    time: int = 100
    dt: float = 1.0
    intensity: float = 128.0
    n_classes: int = 10
    batch_size: int = 16
    seed: int = 1234
    n_neurons: int = 100
    input_size: int = 28
    reduction: str = "sum"
    stdp_reduction: str = "sum"
    theta_plus: float = 0.05
    inh: float = 120.0
    exc: float = 22.5
    epochs: int = 1
    n_train: int | None = None
    n_test: int | None = None
    model: str = "diehl-cook-2015"
    checkpoint_every: int = 10000
    device: str = "auto"
    download: bool = False
    engine: str = "auto"
    one_step: bool = False
    one_spike: str = "bindsnet"
    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    nu_decay: float = 1.0
    # A neuron's potentiation rate falls as its threshold rises: nu_post / (1 + theta / nu_post_theta),
    # half of nu_post once theta has risen by nu_post_theta mV (online k-means' step; docs/accuracy.md).
    nu_post_theta: float | None = None
    # The input weights a run keeps are the mean of its weights over the last this fraction of
    # the final epoch (Polyak-Ruppert averaging; snnctl/service/averaging.py); null: the last.
    average_weights: float | None = None
    norm: float = 78.4
    wmin: float = 0.0
    wmax: float = 1.0
    exc_thresh: float = -52.0
    tc_theta_decay: float = 1e7
    update_interval: int = 256
    min_spikes: int = 0
    max_retries: int = 3
    intensity_step: float = 32.0
    test_fraction: float = 0.2
    resize: str = "squash"
    balance: bool = False
    strict: bool = False
    encoder: str = "PoissonEncoder"
    # Patient groups (docs/mammo.md): a group never straddles a split or a fold. Either a
    # regular expression whose first group, matched against each file's path inside its
    # class folder, names the group, or a CSV file with columns path,group[,label].
    group: str | None = None
    group_file: str | None = None
    # k-fold cross-validation: ``folds`` K makes ``train`` a study of K runs; ``fold`` is
    # the fold (0..K-1) whose images one run of a study holds out.
    folds: int | None = None
    fold: int | None = None
    # Each image's slant taken out by a shear, its centre of mass moved to the middle
    # (snnctl.data.encodings, before the encodings below): handwriting's slant, not its shape.
    deskew: bool = False
    # Encodings of low-contrast images (snnctl.data.encodings): per-image percentile
    # window, CLAHE, and rate, on-off (difference-of-Gaussians ON and OFF channels) or
    # rate+on-off (the grey levels with the ON and OFF channels beside them).
    normalize: str = "none"
    clahe: bool = False
    # Each grey level raised to this power after the window and CLAHE: 0.5 lifts a dark
    # garment's cloth towards its outline (docs/accuracy.md), 2 lifts a mammogram's finding
    # above the tissue's range (docs/mammo.md); 1: as they are.
    gamma: float = 1.0
    encoding: str = "rate"
    # Each image's input rates scaled to this Euclidean length after the encodings, so that a
    # faint image drives the layer as hard as a bright one (k-means' unit-length images;
    # docs/accuracy.md); null: the rates as they are.
    input_length: float | None = None
    # Threads that run images with learning off (labelling, testing, evaluate, assign):
    # "auto" (every core this process may use) or a number; results are the same for any.
    workers: str = "auto"
    # How spike counts become classes: Diehl & Cook's vote, or the linear readout (docs/readout.md).
    readout: str = "vote"
    # Report the pixel logistic regression on the same split beside every result.
    baseline: bool = True
    # Training images (seeded, class-stratified) the linear readout and the baseline are fitted on; null: all.
    readout_max_train: int | None = 10000
    # Studies (--folds) and sweeps: run this many networks of one shape in lockstep on `device`
    # (snnctl/engine/many.py), each learning as it would alone on the fast engine; null: one per run.
    networks_per_device: int | None = None
    # What the linear readout reads: the spike counts, or each neuron's input drive above
    # the layer's mean (a soft competition in place of the winner-take-all; docs/readout.md).
    readout_features: str = "counts"
    # With readout_features drive: each neuron's largest drive over the image shifted by up to
    # this many pixels each way (docs/readout.md, Shifts); 0: the image where it lies.
    readout_shift: int = 0
    # With patch_size and readout_features drive: each neuron's largest drive over the whole
    # image (global), or that and its largest over the windows centred in the image's middle
    # half (centre: two features a neuron; public patch sets are cut around the finding), or
    # those two and the mean drive over each (centre-mean: four; the mean reads texture).
    readout_pooling: str = "global"
    # With readout_features drive: the linear readout and the pixel baseline are also fitted on
    # this many seeded, slightly rotated, scaled and sheared copies of each training image they
    # fit on (docs/readout.md, Distorted copies); the layer never learns from them.
    readout_augment: int = 0
    # Receptive fields smaller than the image (snnctl.data.windows): each excitatory neuron
    # sees a patch_size x patch_size window, learns on random windows and reads an image by
    # sliding over it; null: the whole image, as Diehl & Cook.
    patch_size: int | None = None
    # With patch_size: the random windows each training image gives per epoch.
    windows_per_image: int = 16

    @property
    def n_pixels(self) -> int:
        """Pixels of one image: ``input_size`` squared."""
        return self.input_size * self.input_size

    @property
    def input_channels(self) -> int:
        """Input populations per pixel: one for ``rate``, two for ``on-off`` (ON and OFF),
        three for ``rate+on-off`` (grey, ON and OFF)."""
        return CHANNELS[self.encoding]
    @property
    def field_size(self) -> int:
        """The side of a neuron's receptive field: ``patch_size``, or the whole image."""
        return self.patch_size or self.input_size

    @property
    def n_inputs(self) -> int:
        """Input neurons: ``input_channels`` x ``field_size`` squared."""
        return self.input_channels * self.field_size * self.field_size

    @property
    def n_image_inputs(self) -> int:
        """Input values of one whole image: ``input_channels`` x ``input_size`` squared."""
        return self.input_channels * self.n_pixels

    @property
    def n_readout_features(self) -> int:
        """Features of an image the linear readout reads: one per neuron, two with
        ``readout_pooling: centre``, four with ``centre-mean``."""
        return self.n_neurons * FEATURES_PER_NEURON[self.readout_pooling]

    @property
    def grouped(self) -> bool:
        """Images carry patient groups: ``group`` or ``group_file`` is set."""
        return self.group is not None or self.group_file is not None

    @property
    def steps(self) -> int:
        """Simulation steps per presentation (BindsNET: ``int(time / dt)``)."""
        return int(self.time / self.dt)

    def learning_rates(self, epoch: int) -> tuple[float, float]:
        """STDP rates (nu_pre, nu_post) in ``epoch`` (from 0): multiplied by ``nu_decay``
        after each epoch, a step schedule that lets a layer settle once it is recruited."""
        factor = self.nu_decay ** epoch
        return self.nu_pre * factor, self.nu_post * factor

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every network tensor these parameters imply (checked on load)."""
        n = self.n_neurons
        shapes = {"input_to_exc.weight": (self.n_inputs, n), "exc.theta": (n,)}
        shapes.update({f"{name}.weight": (n, n) for name in lateral_names(self.model)})
        return shapes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    def replace(self, **changes: Any) -> "Config":
        return validate(dataclasses.replace(self, **changes), source="the command's options")


def lateral_names(model: str) -> tuple[str, ...]:
    """The fixed connections of a model: through an inhibitory layer, or recurrent."""
    return ("exc_to_inh", "inh_to_exc") if model == "diehl-cook-2015" else ("recurrent",)


def check_resume_changes(stored: "Config", wanted: "Config", source: str) -> None:
    """Refuse a resumed run whose parameters differ from the checkpoint's in a key that
    :data:`RESUMABLE_KEYS` does not list (one ConfigError line, before anything runs)."""
    for key in KEYS:
        if key not in RESUMABLE_KEYS and getattr(wanted, key) != getattr(stored, key):
            raise ConfigError(f"{source}: {key} cannot change on resume ({show(getattr(stored, key))} in the "
                              f"checkpoint, {show(getattr(wanted, key))} asked); keys that may change: "
                              f"{', '.join(RESUMABLE_KEYS)}")


def _check_name(name: str | None, source: str) -> None:
    """A run's ``name`` is one folder inside log_dir/TASK: one path component."""
    if name is None:
        return
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"{source}: name: {show(name)} is not one folder name (no /, no .., not empty)")


_TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool}
# Annotations are strings here (postponed evaluation): "int | None" -> int, nullable.
FIELD_TYPES: dict[str, type] = {
    f.name: _TYPE_NAMES[str(f.type).split("|")[0].strip()] for f in fields(Config)
}
NULLABLE = {f.name for f in fields(Config) if "None" in str(f.type)}
DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Config)}
KEYS = tuple(FIELD_TYPES)


def _type_name(key: str) -> str:
    name = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    text = name[FIELD_TYPES[key]]
    return text + (" or null" if key in NULLABLE else "")


def _coerce(key: str, value: Any, source: str) -> Any:
    """Check one value's type, converting int to float where a number is expected."""
    wanted = FIELD_TYPES[key]
    if value is None:
        if key in NULLABLE:
            return None
        raise ConfigError(f"{source}: {key}: null is not allowed, expected {_type_name(key)}")
    if wanted is bool:
        if isinstance(value, bool):
            return value
    elif wanted is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif wanted is float:
        value = yaml_number(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{source}: {key}: {value!r} is not allowed, expected a finite number")
            return float(value)
    elif wanted is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        # YAML 1.1 reads a bare off/on as a boolean: take the word back where it is a choice.
        word = "on" if value is True else "off" if value is False else None
        if word in CHOICES.get(key, ()):
            return word
    raise ConfigError(f"{source}: {key}: {show(value)} is not {_type_name(key)}")


def _check_bounds(key: str, value: float, source: str) -> None:
    """``value`` within ``key``'s bounds (:data:`LOWER_BOUNDS`, :data:`UPPER_BOUNDS`), or one ConfigError line."""
    for bounds, beyond, op in ((LOWER_BOUNDS, float.__lt__, ">"), (UPPER_BOUNDS, float.__gt__, "<")):
        if key in bounds:
            bound, inclusive = bounds[key]
            if beyond(float(value), float(bound)) or (value == bound and not inclusive):
                raise ConfigError(f"{source}: {key}: {show(value)} is out of range, must be {op}{'=' if inclusive else ''} "
                                  f"{bound:.10g}")


def validate(config: Config, source: str) -> Config:
    """Check every value against its type, choices and bounds; return the config."""
    values = {}
    for key in KEYS:
        value = _coerce(key, getattr(config, key), source)
        if key == "task" and isinstance(value, str):
            value = TASK_ALIASES.get(value.upper(), value.upper())
        if value is not None and key in CHOICES:
            one_of(value, f"{source}: {key}", CHOICES[key])
        if value is not None:
            _check_bounds(key, value, source)
        values[key] = value
    _check_name(values["name"], source)
    if values["wmin"] >= values["wmax"]:
        raise ConfigError(f"{source}: wmin: {values['wmin']!r} must be below wmax ({values['wmax']!r})")
    if values["time"] / values["dt"] < 1:
        raise ConfigError(f"{source}: time: {values['time']!r} is shorter than one step of dt={values['dt']!r}")
    if not is_worker_count(values["workers"]):
        raise ConfigError(f"{source}: workers: {show(values['workers'])} is not {WORKERS_EXPECTED}")
    if values["encoder"] == "RankOrderEncoder" and values["min_spikes"] > 0:
        # rank-order coding rescales any input to fill the window: a retry's higher rate changes no spike
        raise ConfigError(f"{source}: min_spikes: {values['min_spikes']!r} retries at a higher rate, which "
                          f"RankOrderEncoder ignores; set min_spikes: 0 or another encoder")
    if values["patch_size"] is not None and values["patch_size"] > values["input_size"]:
        raise ConfigError(f"{source}: patch_size: {values['patch_size']!r} is larger than the image (input_size: "
                          f"{values['input_size']!r}); a window lies inside the image")
    for key, what_it_does in DRIVE_ONLY_KEYS.items():
        if values[key] != DEFAULTS[key] and values["readout_features"] != "drive":
            raise ConfigError(f"{source}: {key}: {values[key]!r} {what_it_does}; it needs readout_features: drive "
                              f"(it is {show(values['readout_features'])})")
    if values["readout_pooling"] != "global" and values["patch_size"] is None:
        raise ConfigError(f"{source}: readout_pooling: {values['readout_pooling']!r} pools a layer's windows; "
                          f"it needs patch_size (receptive fields smaller than the image)")
    _check_groups_and_folds(values, source)
    return Config(**values)


def _check_groups_and_folds(values: dict[str, Any], source: str) -> None:
    """``group`` and ``group_file`` exclude each other; ``group`` must compile with a
    capture group; ``fold`` needs ``folds`` and lies below it."""
    if values["group"] is not None and values["group_file"] is not None:
        raise ConfigError(f"{source}: group and group_file: give one way to name the groups, not both")
    if values["group"] is not None:
        try:
            pattern = re.compile(values["group"])
        except re.error as exc:
            raise ConfigError(f"{source}: group: {yaml_quoted(values['group'])} is not a valid regular expression "
                              f"({exc})") from None
        if pattern.groups < 1:
            raise ConfigError(f"{source}: group: {yaml_quoted(values['group'])} has no capture group; put the part "
                              f"that names the group in parentheses, e.g. '^(P\\d+)_'")
    fold, folds = values["fold"], values["folds"]
    if fold is not None and (folds is None or fold >= folds):
        raise ConfigError(f"{source}: fold: {fold!r} must be below folds ({folds!r})")


def unknown_key(key: str, source: str, known: tuple[str, ...] = KEYS) -> ConfigError:
    """The error for a key that is not a parameter, with the nearest one as a hint."""
    return validators.unknown_key(key, source, known)


def from_mapping(document: Any, source: str) -> Config:
    """Build a validated Config from a parsed YAML document of either layout."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of parameters, got {type(document).__name__}")
    if "training" in document or isinstance(document.get("encoder"), dict):
        document = flatten_original(document, source, KEYS)
    for key in document:
        if not isinstance(key, str) or key not in FIELD_TYPES:
            raise unknown_key(str(key), source)
    return validate(Config(**document), source)


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a parameter file (ours or the original nested layout) and apply overrides."""
    source = str(path)
    document = read_yaml_file(path, "parameter file")
    if document is None:
        # An empty file (or only comments, or null) is more likely a mistake, a file not yet
        # written or truncated, than a wish for a full default run.
        raise ConfigError(f"{source}: empty parameter file, no parameters to run "
                          f"(see parameters/mnist.yaml for one)")
    config = from_mapping(document, source)
    return apply_overrides(config, overrides or [])


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``key=value`` strings; values are read as YAML scalars (``5``, ``true``)."""
    changes: dict[str, Any] = {}
    for item in overrides:
        source = f"--set {item}" if item.isprintable() else f"--set {show(item)}"
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"{source}: expected KEY=VALUE")
        if key not in FIELD_TYPES:
            raise unknown_key(key, "--set")
        changes[key] = parse_yaml(text, source) if text.strip() else None
    if not changes:
        return config
    return validate(dataclasses.replace(config, **changes), source="--set")


def dump_yaml(config: Config) -> str:
    """The resolved parameters as a flat YAML file that :func:`load` reads back."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)


def dump_text(config: Config) -> str:
    """The original project's parameters.txt: one ``key: value`` line per parameter."""
    return "".join(f"{key}: {value}\n" for key, value in config.to_dict().items())


def from_json(text: str, source: str) -> Config:
    """Rebuild a Config stored in a checkpoint's metadata (a bad one is a bad file: exit 1)."""
    try:
        return from_mapping(json.loads(text), source)
    except (ValueError, RecursionError) as exc:  # also numbers too long for int(), nesting too deep
        raise SnnctlError(f"{source}: not valid JSON: {exc}") from None
    except ConfigError as exc:
        raise SnnctlError(str(exc)) from None
