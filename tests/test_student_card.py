"""A student's card (architecture, search, QAT record) rides on the module: built by the registry, kept
by copies, never part of its weights, and read the same way for any module."""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgekd.models import create_student
from edgekd.schema.student import StudentCard, arch_of, card_of, set_card


def test_a_registry_student_carries_what_to_rebuild_it_from():
    model = create_student("resnet", (1, 8, 8), 10, widths=(4, 8, 16))
    arch = card_of(model).arch
    assert arch["name"] == "resnet" and tuple(arch["widths"]) == (4, 8, 16)
    rebuilt = create_student(arch["name"], (1, 8, 8), 10, **{k: v for k, v in arch.items() if k != "name"})
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def test_the_card_survives_copies_and_stays_out_of_the_weights():
    model = create_student("resnet", (1, 8, 8), 10, widths=(4, 8, 16))
    keys = list(model.state_dict())
    set_card(model, search={"outcome": "found"})
    assert list(model.state_dict()) == keys
    twin = copy.deepcopy(model)
    assert card_of(twin) == card_of(model) and card_of(twin).search == {"outcome": "found"}
    assert card_of(twin).arch == card_of(model).arch  # set_card keeps the fields it was not given


def test_a_module_edgekd_did_not_build_has_an_empty_card():
    plain = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    assert card_of(plain) == StudentCard()
    assert arch_of(plain, {"name": "Sequential"}) == {"name": "Sequential"}
    with torch.no_grad():
        assert plain(torch.zeros(1, 4)).shape == (1, 2)
