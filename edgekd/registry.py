"""One small name → object registry, shared by students, losses, scores, datasets, calibrators and backends.

Modelled on timm's ``_registry`` (``@register_model`` fills one table; ``list_models`` and
``model_entrypoint`` read it), reduced to what edgekd needs:

    STUDENTS = Registry("student")

    @STUDENTS.register("resnet", ops={"Conv", "Relu"})
    def resnet(input_shape, num_classes, **kw): ...

    STUDENTS.get("resnet")          # the factory
    STUDENTS.meta("resnet")["ops"]  # what was registered with it
    STUDENTS.names()                # sorted names

An unknown name raises one error naming it and listing the valid ones; a name registered twice
fails at import time. Each domain keeps its own public functions (``create_student``,
``create_loss``, ``get_score`` ...) as thin wrappers over its ``Registry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from edgekd.errors import ConfigError, EdgeKDError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object, the module that registered it, and the metadata given with it."""

    name: str
    obj: T
    module: str
    meta: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A table of named objects of one kind.

    Args:
        kind: what the entries are, as the error messages say it ("student", "loss", "dataset").
        unknown_error: the exception an unknown name raises (``ConfigError`` unless the domain
            reports bad input through another ``EdgeKDError``, as datasets do with ``DataError``).
    """

    def __init__(self, kind: str, unknown_error: type[EdgeKDError] = ConfigError):
        self.kind = kind
        self.unknown_error = unknown_error
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, **meta) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` with ``meta``; returns it unchanged."""

        def wrap(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return wrap

    def add(self, name: str, obj: T, **meta) -> T:
        """Register ``obj`` under ``name``.

        Raises:
            ConfigError: the name is already registered.
        """
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is registered twice")
        module = getattr(obj, "__module__", None) or type(obj).__module__
        self._entries[name] = Entry(name, obj, module, MappingProxyType(dict(meta)))
        return obj

    def entry(self, name: str) -> Entry[T]:
        """The full record of ``name``.

        Raises:
            ``unknown_error``: naming the unknown name and the valid ones.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name is as unknown as a misspelt one
            raise self.unknown_error(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def get(self, name: str) -> T:
        """The object registered under ``name`` (raises as :meth:`entry` does)."""
        return self.entry(name).obj

    def meta(self, name: str) -> Mapping[str, Any]:
        """The read-only metadata registered with ``name`` (raises as :meth:`entry` does)."""
        return self.entry(name).meta

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
