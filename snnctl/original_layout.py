"""The original project's nested parameter layout (``../shared/seed``: ``training`` and
``encoder`` blocks beside ``time``, ``dt`` and ``name``), flattened into snnctl's keys so
that its parameter files load unchanged (:func:`snnctl.config.from_mapping`)."""

from __future__ import annotations

from typing import Any

from snnctl.errors import ConfigError
from snnctl.validators import show, unknown_key

# Encoders are accepted by class name only: a parameter file never imports a module.
ENCODERS = ("PoissonEncoder", "BernoulliEncoder", "RankOrderEncoder")
ENCODER_MODULE = "bindsnet.encoding"


def flatten_original(document: dict[str, Any], source: str, known: tuple[str, ...]) -> dict[str, Any]:
    """Map the original project's nested layout (time, dt, name, training, encoder).

    Its one ``reduction`` key fed BindsNET's learning rule, and its README described it
    as the readout: it sets both ``reduction`` and ``stdp_reduction``. The original
    run.py built ``DiehlAndCook2015v2`` and ran it in BindsNET's one-step mode. ``known``:
    the parameter names an unknown key is matched against for a hint.
    """
    flat: dict[str, Any] = {"model": "diehl-cook-2015-v2", "one_step": True}
    for key, value in document.items():
        if key == "training":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: training: expected a mapping, got {show(value)}")
            flat.update(value)
        elif key == "encoder":
            flat.update(_encoder_block(value, source, known))
        else:
            flat[key] = value
    if "reduction" in flat and "stdp_reduction" not in flat:
        flat["stdp_reduction"] = flat["reduction"]
    return flat


def _encoder_block(block: Any, source: str, known: tuple[str, ...]) -> dict[str, Any]:
    """Accept a BindsNET encoder named by class; never import what a file names."""
    if not isinstance(block, dict):
        raise ConfigError(f"{source}: encoder: expected a mapping, got {show(block)}")
    module = block.get("module_name", ENCODER_MODULE)
    if module != ENCODER_MODULE:
        raise ConfigError(f"{source}: encoder.module_name: {show(module)} is not allowed, only {ENCODER_MODULE!r}")
    name = block.get("class_name", "PoissonEncoder")
    if name not in ENCODERS:
        raise ConfigError(f"{source}: encoder.class_name: {show(name)} is not one of {', '.join(ENCODERS)}")
    unknown = set(block) - {"module_name", "class_name", "params"}
    if unknown:
        raise unknown_key(f"encoder.{sorted(unknown)[0]}", source, known)
    params = block.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: encoder.params: expected a mapping, got {show(params)}")
    flat: dict[str, Any] = {"encoder": name}
    for key, value in params.items():
        if key not in ("time", "dt"):
            # a key is shown as written, unless it holds characters a terminal would act on
            name = key if isinstance(key, str) and key.isprintable() else show(key)
            raise ConfigError(f"{source}: encoder.params.{name}: not supported, only time and dt")
        flat[key] = value
    return flat
