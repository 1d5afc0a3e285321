"""Successive halving: short distillations decide among screened finalists, deterministically, cost counted."""

from __future__ import annotations

import pytest

from edgekd.errors import ConfigError
from edgekd.search.halving import Finalist, HalvingConfig, successive_halving

CAPABLE = {"name": "resnet", "depths": (1, 1, 1), "widths": (16, 16, 32)}
STARVED = {"name": "resnet", "depths": (1, 1, 1), "widths": (1, 1, 1)}  # one channel per stage cannot learn digits
SMALL = {"name": "resnet", "depths": (1, 1, 1), "widths": (2, 2, 2)}
CONFIG = HalvingConfig(rung_epochs=(2, 1), train_size=500, val_size=300, batch_size=32, lr=1e-2)


def _run(digits, teacher, archs, config=CONFIG):
    train, val, _ = digits
    finalists = [Finalist(arch, screening_score=float(-i)) for i, arch in enumerate(archs)]
    return successive_halving(finalists, teacher, train, val, config)


@pytest.fixture(scope="module")
def halved(digits, digits_teacher):
    return _run(digits, digits_teacher, [STARVED, SMALL, STARVED, CAPABLE])


def test_successive_halving_picks_the_candidate_that_distills_best_even_when_screened_last(halved):
    assert halved.winner == CAPABLE
    capable = halved.finalists[3]
    assert capable.eliminated_after_rung is None and len(capable.accuracies) == 2
    assert capable.accuracies[-1] > max(f.accuracies[0] for f in halved.finalists[:3]) + 0.2
    why = halved.why()
    assert why["winner_accuracy"] == capable.accuracies[-1] and why["margin"] is not None and why["margin"] >= 0


def test_successive_halving_keeps_half_per_rung_and_counts_its_cost(halved, digits):
    assert sum(f.eliminated_after_rung == 0 for f in halved.finalists) == 2
    assert all(len(f.accuracies) == (1 if f.eliminated_after_rung == 0 else 2) for f in halved.finalists)
    # rung 1: 4 candidates x 2 epochs, rung 2: 2 x 1 more epoch, each over 500 of the training samples
    assert halved.student_epochs == pytest.approx((4 * 2 + 2 * 1) * 500 / len(digits[0]))
    assert halved.to_json()["finalists"][0]["arch"] == STARVED


def test_successive_halving_is_deterministic_for_a_seed(digits, digits_teacher):
    config = HalvingConfig(rung_epochs=(1,), train_size=300, val_size=200, batch_size=32)
    first = _run(digits, digits_teacher, [SMALL, CAPABLE], config)
    second = _run(digits, digits_teacher, [SMALL, CAPABLE], config)
    assert [f.accuracies for f in first.finalists] == [f.accuracies for f in second.finalists]
    assert first.winner == second.winner


@pytest.mark.parametrize("kwargs", [{"rung_epochs": ()}, {"rung_epochs": (1, 0)}, {"keep": 1.0}, {"keep": 0},
                                    {"train_size": 0}])
def test_halving_config_refuses_nonsense(kwargs):
    with pytest.raises(ConfigError):
        HalvingConfig(**kwargs)


def test_successive_halving_needs_a_finalist(digits, digits_teacher):
    with pytest.raises(ConfigError, match="at least one"):
        _run(digits, digits_teacher, [])
