"""Packages that are also verbs (edgekd/_verbs.py): callable, and their submodules still import."""

import importlib
import types

import pytest

import edgekd
from edgekd._verbs import VerbModule, make_callable

VERBS = {"search": "edgekd.search.scores", "distill": "edgekd.distill.losses", "validate": "edgekd.validate.metrics",
         "compile": "edgekd.compile"}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_verbs_module_is_callable_after_its_submodule_is_imported(verb):
    importlib.import_module(VERBS[verb])  # rebinds edgekd.<verb> to the module
    module = getattr(edgekd, verb)
    assert isinstance(module, VerbModule) and callable(module)
    assert module.__verb__ is getattr(module, verb)  # the module's own function of the same name


def test_verbs_call_forwards_arguments_and_result(monkeypatch):
    module = types.ModuleType("edgekd_test_verb_module")
    monkeypatch.setitem(importlib.sys.modules, module.__name__, module)
    make_callable(module.__name__, lambda *a, **kw: (a, kw))
    assert module(1, 2, k=3) == ((1, 2), {"k": 3})
