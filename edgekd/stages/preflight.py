"""Up-front checks of a build's arguments: every bad input fails here, before anything is written or trained;
:func:`guarded` runs them around ``build``/``build_all`` and then holds the output folder."""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from pathlib import Path

import numpy as np

from edgekd.backends.base import backend_entry
from edgekd.compiler import MIN_CALIBRATION_SAMPLES
from edgekd.data.builtin import data_request
from edgekd.distill.device import check_device
from edgekd.errors import ConfigError, DataError
from edgekd.outdir import BuildTransaction, check_writable
from edgekd.targets import Target, list_targets, load_recipe, load_target

MAX_SEED = 2**32 - 1  # numpy's and torch's common seed range
MAX_EPOCHS = 100_000
MAX_BATCH = 65_536
MAX_CALIB = 1_000_000
MAX_LATENCY_RUNS = 1_000_000
MAX_STUDENT_NUMBER = 4096  # widths, depths...: beyond this a small student is not small (and may not fit memory)


def integer(name: str, value, low: int, high: int, *, optional: bool = False) -> None:
    """``value`` must be an int (not a bool) in [low, high]."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is out of range; expected {low} to {high}")


def real(name: str, value, low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> None:
    """``value`` must be a finite real number in the given interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name}: {value} is not a finite number")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ConfigError(f"{name}: {value} is out of range; expected {'(' if low_open else '['}{low}, {high}"
                          f"{')' if high_open else ']'}")


def check_student_numbers(value, path: str = "student") -> None:
    """Every number in a student spec (``{"name": ..., "widths": [...]}``) is finite and modest."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_student_numbers(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_student_numbers(v, f"{path}[{i}]")
    elif isinstance(value, numbers.Number) and not isinstance(value, bool):
        if not isinstance(value, numbers.Real) or not math.isfinite(value) or abs(value) > MAX_STUDENT_NUMBER:
            raise ConfigError(f"{path}: {value!r} is out of range; expected a finite number of magnitude at "
                              f"most {MAX_STUDENT_NUMBER}")


def check_targets(targets, *, known_backend: bool = True) -> list:
    """Targets resolved, each with a calibration recipe found in the calibration folders and, with
    ``known_backend``, a registered backend (``build_all`` instead lists such a target "not built here")."""
    chosen = resolve_targets(targets)
    for t in chosen:
        if known_backend:
            backend_entry(t.backend)
        load_recipe(t.calibration.recipe)
    return chosen


def _calib_size(value) -> None:
    integer("calib_size", value, -(2**63), MAX_CALIB, optional=True)
    if value is not None and value < MIN_CALIBRATION_SAMPLES:  # compile's own wording, before any training
        raise DataError(f"calibration: {value} samples requested (calib_size); at least {MIN_CALIBRATION_SAMPLES} "
                        "are needed")


def check_settings(args: dict) -> None:
    """The numeric settings of ``build``/``build_all``, by the names of their keyword arguments."""
    checks = {
        "epochs": lambda v: integer("epochs", v, 1, MAX_EPOCHS),
        "batch_size": lambda v: integer("batch_size", v, 1, MAX_BATCH),
        "lr": lambda v: real("lr", v, 0.0, 10.0, low_open=True),
        "seed": lambda v: integer("seed", v, 0, MAX_SEED),
        "calib_size": _calib_size,
        "val_fraction": lambda v: real("val_fraction", v, 0.0, 1.0, low_open=True, high_open=True),
        "latency_runs": lambda v: integer("latency_runs", v, 1, MAX_LATENCY_RUNS),
        "device": check_device,
    }
    for name, check in checks.items():
        if name in args:
            check(args[name])
    if isinstance(args.get("student"), dict):
        check_student_numbers(args["student"])


def check_labels(args: dict) -> None:
    """Labels given as arrays: at least two classes (Datasets and DataLoaders are checked as they are read)."""
    train = args.get("train")
    if isinstance(train, (tuple, list)) and len(train) == 2:
        try:
            classes = np.unique(np.asarray(train[1]))
        except (TypeError, ValueError):
            return  # as_array_data names what is wrong with these labels
        if len(classes) < 2:
            raise DataError(f"train: every sample has label {classes[0] if len(classes) else None!r}; "
                            "distillation needs at least two classes")


def check_build(args: dict, target_arg: str) -> list[str]:
    """All of a build's arguments checked; returns the target names it will write. Writes nothing."""
    out = args.get("out_dir")
    if not isinstance(out, (str, Path)) or str(out) == "":
        raise ConfigError(f"out_dir: expected a folder path, got {out!r}")
    check_settings(args)
    check_labels(args)
    if args.get("train") is None:  # the built-in dataset or an image folder: checked without reading images
        data_request(*(args.get(k) for k in ("dataset", "data_dir", "val_dir", "image_size", "channels")))
    targets = args.get(target_arg)
    chosen = check_targets(targets, known_backend=target_arg == "target")  # one target: it must be buildable
    check_writable(Path(out))
    return [t.name for t in chosen]


def resolve_targets(targets=None) -> list[Target]:
    """Target names, paths or objects → validated targets (all of them for None), duplicates dropped."""
    if targets is None:
        found = list_targets()
    else:
        found = [load_target(t) for t in ([targets] if isinstance(targets, (str, Target)) else targets)]
    unique: dict[str, Target] = {}
    for t in found:
        unique.setdefault(t.name, t)
    if not unique:
        raise ConfigError("no targets to build: none given and none found in the targets folders")
    return list(unique.values())


def guarded(target_arg: str):
    """Decorate ``build``/``build_all``: check every argument up front, then run inside a BuildTransaction.

    ``target_arg`` names the parameter holding the target(s) (``target`` or ``targets``).
    """

    def wrap(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            names = check_build(bound.arguments, target_arg)
            with BuildTransaction(bound.arguments["out_dir"], names):
                return func(*args, **kwargs)

        return run

    return wrap
