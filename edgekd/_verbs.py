"""Packages that are also verbs: ``edgekd.search(...)`` calls a function, ``edgekd.search.scores`` is a module.

Why a module must be callable: ``edgekd.search``, ``edgekd.distill``, ``edgekd.validate`` and
``edgekd.compile`` are public functions *and* modules (packages with submodules, or a module other
code imports). Python's import system binds a submodule's parent as an attribute of the package
above it, so after ``import edgekd.search.scores`` (or ``import edgekd.compile``) the name
``edgekd.search`` is the module, whatever ``edgekd/__init__.py`` exported. Making the module itself
callable keeps both readings true: ``edgekd.search(teacher, data, target)`` runs the verb, and
``edgekd.search.scores`` still imports.

Each such module calls :func:`make_callable` once, at its end:

    make_callable(__name__, search)
"""

from __future__ import annotations

import sys
import types
from typing import Any, Callable


class VerbModule(types.ModuleType):
    """A module that runs its verb when called; every other attribute behaves as a module's."""

    __verb__: Callable[..., Any]

    def __call__(self, *args, **kwargs):
        return self.__verb__(*args, **kwargs)


def make_callable(module_name: str, verb: Callable[..., Any]) -> None:
    """Make the already imported module ``module_name`` callable as ``verb``."""
    module = sys.modules[module_name]
    module.__verb__ = verb
    module.__class__ = VerbModule
