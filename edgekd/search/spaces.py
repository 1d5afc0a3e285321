"""Search spaces over the student registry families, filtered by the operators a target runs.

A candidate is a registry name plus keyword arguments (``{"name": "resnet", "depths": ..., ...}``),
exactly what ``create_student`` takes and what a built student carries as ``card_of(model).arch``. Each
space is a set of genes (one choice list each); mutation changes one gene. Genes whose choices
imply an operator (the activation) only offer what the target declares in ``target.ops``; a family
whose fixed operators the target lacks is refused with the missing ones named.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from torch import nn

from edgekd.errors import ConfigError
from edgekd.models import create_student, student_info
from edgekd.models.mobilenet import SE_OPS

# searched activations; hard-swish and squeeze-excite are built but not proposed: no profile prices them yet
ACT_OPS = ("relu", "relu6")


@dataclass(frozen=True)
class Space:
    """A family of the student registry and per-gene choices.

    Attributes:
        name: the space's name (``resnet``, ``resnet-compact``, ``mobilenetv2``).
        family: the student registry entry the candidates are built from.
        genes: ``(gene, choices)`` pairs; a gene ``depths.1`` is element 1 of the ``depths`` tuple.
        fixed: keyword arguments every candidate gets.
    """

    name: str
    family: str
    genes: tuple[tuple[str, tuple], ...]
    fixed: tuple[tuple[str, object], ...] = ()

    def sample(self, rng: random.Random) -> dict:
        return self._arch({gene: rng.choice(choices) for gene, choices in self.genes})

    def mutate(self, arch: dict, rng: random.Random) -> dict:
        """Change exactly one gene that has an alternative to a different value."""
        values = self._values(arch)
        mutable = [(g, c) for g, c in self.genes if len(c) > 1]
        gene, choices = rng.choice(mutable)
        values[gene] = rng.choice([c for c in choices if c != values[gene]])
        return self._arch(values)

    def size(self) -> int:
        n = 1
        for _, choices in self.genes:
            n *= len(choices)
        return n

    def ops(self, arch: dict) -> frozenset[str]:
        """The operators a candidate uses: the family's, with its activation swapped in."""
        base = student_info(self.family).ops
        act = arch.get("act")
        ops = base if act is None else (base - set(ACT_OPS)) | {act}
        return ops | SE_OPS if any(arch.get("se") or ()) else ops

    def build(self, arch: dict, input_shape, num_classes: int) -> nn.Module:
        kwargs = {k: v for k, v in arch.items() if k != "name"}
        return create_student(arch["name"], input_shape, num_classes, **kwargs)

    def _arch(self, values: dict) -> dict:
        kwargs: dict = dict(self.fixed)
        tuples: dict[str, dict[int, object]] = {}
        for gene, value in values.items():
            key, _, index = gene.partition(".")
            if index:
                tuples.setdefault(key, {})[int(index)] = value
            else:
                kwargs[key] = value
        for key, items in tuples.items():
            kwargs[key] = tuple(items[i] for i in sorted(items))
        return {"name": self.family, **kwargs}

    def _values(self, arch: dict) -> dict:
        values = {}
        for gene, _ in self.genes:
            key, _, index = gene.partition(".")
            values[gene] = tuple(arch[key])[int(index)] if index else arch[key]
        return values


def _stages(key: str, per_stage: tuple[tuple, ...]) -> tuple[tuple[str, tuple], ...]:
    return tuple((f"{key}.{i}", tuple(c)) for i, c in enumerate(per_stage))


SPACES = {
    # The space: depth 1/3/5/7 per stage, width per stage (the multiplier of a base width).
    "resnet": ("resnet", _stages("depths", ((1, 3, 5, 7),) * 3)
               + _stages("widths", ((8, 12, 16, 24, 32), (16, 24, 32, 48, 64), (32, 48, 64, 96, 128)))),
    # What `edgekd build` searches: no narrower than the default student, shallow enough to distill in
    # the default build's minutes (wider/deeper than this buys nothing on 28×28 data and costs time).
    "resnet-compact": ("resnet", _stages("depths", ((1, 2),) * 3)
                       + _stages("widths", ((16, 24, 32), (32, 48, 64), (64, 96, 128)))),
    "mobilenetv2": ("mobilenetv2", _stages("depths", ((1, 2, 3),) * 3)
                    + _stages("widths", ((8, 16, 24), (16, 24, 32), (24, 32, 48)))
                    + _stages("expansions", ((1, 3, 6),) * 3) + _stages("kernels", ((3, 5, 7),) * 3)),
}


def list_spaces() -> list[str]:
    return sorted(SPACES)


def make_space(name: str, target_ops) -> Space:
    """The space ``name`` restricted to ``target_ops`` (a target's ``ops`` list).

    Raises:
        ConfigError: unknown space, or the target lacks an operator the family cannot do without.
    """
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; valid: {', '.join(list_spaces())}")
    family, genes = SPACES[name]
    ops = set(target_ops)
    required = student_info(family).ops - set(ACT_OPS)
    missing = sorted(required - ops)
    acts = tuple(a for a in ACT_OPS if a in ops)
    if missing or not acts:
        lacks = missing + ([] if acts else ["relu or relu6"])
        raise ConfigError(f"search space {name!r} ({family}) needs operators the target does not run: "
                          f"{', '.join(lacks)}")
    return Space(name, family, tuple(genes) + (("act", acts),))
