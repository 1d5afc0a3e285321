"""edgekd: distilled students, compiled and validated per device.

The public verbs are ``build``, ``build_all``, ``load``, ``compile``, ``validate``, ``distill`` and
``search``. Submodules are imported on first use so ``import edgekd`` stays light.

Architecture — where each stage lives and what it may import (``tests/test_architecture.py``):

* ``pipeline.build`` and ``matrix.build_all`` call ``matrix.run_build``, the one orchestrator; the
  ``edgekd`` command (``cli/``) calls them.
* ``stages/`` holds the stages as public functions over one ``BuildContext``, in order:
  ``preflight`` (every argument checked before any work), ``data``, ``teacher``, ``student`` (the
  teacher compiled for each target first, then the student searched or taken), ``distill``,
  ``deliver`` (compile, validate in the runtime or say why not, report beside the teacher).
* The wings below the stages do one job each and never import a stage, the orchestrator or the
  CLI: ``report`` (one builder of the typed report; writers), ``baseline``, ``search``,
  ``validate``, ``compile``/``compiler``, ``distill``, ``hw`` (latency models), ``backends``,
  ``quant``, ``calibrate``, ``models``, ``data``.
* At the bottom, importable by all: ``schema`` (``Status``, the typed report), ``targets``,
  ``registry``, ``errors``, ``_io``, ``outdir``.
* No two subpackages import each other, even inside functions; imports sit at module top except
  heavy optional SDKs (ONNX Runtime, OpenVINO, Core ML, ExecuTorch, LiteRT, NNCF), imported on first use.
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
