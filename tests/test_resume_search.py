"""--resume continues the student the interrupted build's search chose, whatever a new search would pick."""

from __future__ import annotations

import torch

from edgekd.models import create_student
from edgekd.schema.student import card_of, set_card
from edgekd.stages import prepare_data
from edgekd.stages.student import remember_search, resumed_search


def test_a_remembered_search_comes_back_as_the_same_untrained_student(tmp_path):
    data = prepare_data((torch.randn(40, 1, 12, 12), torch.arange(40) % 3), None)
    arch = {"name": "resnet", "depths": (1, 1, 1), "widths": (8, 16, 32)}
    torch.manual_seed(0)
    chosen = set_card(create_student("resnet", (1, 12, 12), 3, depths=(1, 1, 1), widths=(8, 16, 32)),
                      search={"outcome": "found", "arch": arch, "finalists": [{"arch": arch, "score": 1.5}]})
    remember_search(tmp_path, chosen)
    assert resumed_search(tmp_path / "elsewhere", data) is None  # nothing remembered: search anew
    torch.manual_seed(0)
    again = resumed_search(tmp_path, data)
    assert card_of(again).search["arch"] == {"name": "resnet", "depths": [1, 1, 1], "widths": [8, 16, 32]}
    assert card_of(again).search["outcome"] == "found"
    for (name, a), (_, b) in zip(chosen.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name  # seeded as then: the checkpoint's fingerprint matches
