"""What edgekd knows about a student beyond its weights, carried on the module as one typed record.

A student built from the registry knows its architecture (what to rebuild it from); a searched one,
the search that chose it; a quantization-aware one, its numeric format, what was quantized and who
taught it. Reports, the latency models and the shared-distillation key read these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the card rides on any torch module; schema itself stays free of torch
    from torch import nn

ATTRIBUTE = "edgekd_card"


@dataclass(frozen=True)
class StudentCard:
    """``arch``: ``{"name": <registry name>, **kwargs}``; ``search``: the search summary that chose it;
    ``qat``: ``{"format", "quantized_layers", "bn_kept_float", "teacher", ...}`` of a QAT student."""

    arch: dict | None = None
    search: dict | None = None
    qat: dict | None = None


def card_of(model: nn.Module) -> StudentCard:
    """The model's card; an empty one for a module edgekd did not build."""
    return model.__dict__.get(ATTRIBUTE) or StudentCard()


def set_card(model: nn.Module, **fields) -> nn.Module:
    """Replace ``fields`` of the model's card (the rest kept); returns the model."""
    object.__setattr__(model, ATTRIBUTE, replace(card_of(model), **fields))  # not a submodule or parameter
    return model


def arch_of(model: nn.Module, default=None):
    """The registry architecture a student was built from, else ``default``."""
    arch = card_of(model).arch
    return default if arch is None else arch
