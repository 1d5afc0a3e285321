"""edgekd: distilled students, compiled and validated per device.

The public verbs are ``build``, ``load``, ``compile``, ``validate`` (and, as they land,
``distill`` and ``search``). Submodules are imported on first use so ``import edgekd``
stays light.
"""

from __future__ import annotations

import importlib
import logging

from edgekd.errors import (CheckpointError, CompileError, ConfigError, DataError, EdgeKDError, MissingExtraError,
                           ValidationError)

__version__ = "0.1.0"
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "build": ("edgekd.pipeline", "build"),
    "BuildResult": ("edgekd.pipeline", "BuildResult"),
    "build_all": ("edgekd.matrix", "build_all"),
    "MatrixResult": ("edgekd.matrix", "MatrixResult"),
    "compile": ("edgekd.compile", "compile"),
    "validate": ("edgekd.validate", "validate"),
    "load": ("edgekd.runtime", "load"),
    "load_target": ("edgekd.targets", "load_target"),
    "list_targets": ("edgekd.targets", "list_targets"),
    "create_student": ("edgekd.models", "create_student"),
    "losses": ("edgekd.distill.losses", None),
    "distill": ("edgekd.distill", None),  # a callable module: edgekd.distill(teacher, student, ...)
    "search": ("edgekd.search", "search"),
}

__all__ = ["CheckpointError", "CompileError", "ConfigError", "DataError", "EdgeKDError", "MissingExtraError",
           "ValidationError", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'edgekd' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
