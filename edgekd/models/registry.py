"""Student registry: ``@register_student`` factories and ``create_student(name, **kw)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from edgekd.errors import ConfigError
from edgekd.registry import Registry
from edgekd.schema.student import set_card


@dataclass(frozen=True)
class StudentInfo:
    """What a family is: the operators it uses (search filters by the target's list)."""

    name: str
    factory: Callable[..., nn.Module]
    ops: frozenset[str]
    description: str = ""
    defaults: dict = field(default_factory=dict)


STUDENTS: Registry[StudentInfo] = Registry("student")


def register_student(name: str, ops: set[str] | frozenset[str], description: str = "", **defaults):
    """Register a factory ``fn(input_shape, num_classes, **kw) -> nn.Module`` under ``name``."""

    def wrap(fn):
        STUDENTS.add(name, StudentInfo(name, fn, frozenset(ops), description or (fn.__doc__ or "").strip(),
                                       dict(defaults)))
        return fn

    return wrap


def list_students() -> list[str]:
    return STUDENTS.names()


def student_info(name: str) -> StudentInfo:
    return STUDENTS.get(name)


def create_student(name: str, input_shape=(1, 28, 28), num_classes: int = 10, **kwargs) -> nn.Module:
    """Build a registered student; unknown keyword arguments are an error."""
    info = student_info(name)
    params = {**info.defaults, **kwargs}
    try:
        model = info.factory(tuple(input_shape), int(num_classes), **params)
    except TypeError as exc:
        raise ConfigError(f"student {name!r}: bad arguments {sorted(kwargs)}: {exc}") from exc
    return set_card(model, arch={"name": name, **params})  # what to rebuild it from (search, reports)
