"""Search spaces: one-gene mutation, and only the operators a target declares."""

from __future__ import annotations

import random

import pytest
from torch import nn

from edgekd.errors import ConfigError
from edgekd.search.spaces import list_spaces, make_space

ALL = ["conv", "depthwise_conv", "batchnorm", "relu", "relu6", "add", "global_avgpool", "linear"]


def _module_ops(model: nn.Module) -> set[str]:
    """Operators a built student really contains, named as targets name them."""
    ops = set()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            ops.add("depthwise_conv" if m.groups > 1 and m.groups == m.in_channels else "conv")
        elif isinstance(m, nn.ReLU6):
            ops.add("relu6")
        elif isinstance(m, nn.ReLU):
            ops.add("relu")
    return ops


@pytest.mark.parametrize("name", list_spaces())
def test_space_mutate_changes_exactly_one_gene(name):
    space = make_space(name, ALL)
    rng = random.Random(0)
    for _ in range(30):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        before, after = space._values(arch), space._values(child)
        assert sum(before[g] != after[g] for g in before) == 1


@pytest.mark.parametrize("name", list_spaces())
@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_space_never_proposes_unsupported_operators(name, act):
    ops = [o for o in ALL if o != act]  # a target that lacks one activation
    space = make_space(name, ops)
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(20)]
    archs += [space.mutate(a, rng) for a in archs]
    for arch in archs:
        assert space.ops(arch) <= set(ops)
    for arch in archs[:4]:  # the built modules agree with the declared operators
        assert _module_ops(space.build(arch, (1, 8, 8), 10)) <= set(ops)


def test_space_refused_when_the_target_lacks_a_family_operator():
    with pytest.raises(ConfigError, match="depthwise_conv"):
        make_space("mobilenetv2", [o for o in ALL if o != "depthwise_conv"])
    with pytest.raises(ConfigError, match="relu or relu6"):
        make_space("resnet", [o for o in ALL if o not in ("relu", "relu6")])
    with pytest.raises(ConfigError, match="valid: mobilenetv2"):
        make_space("vgg", ALL)


def test_resnet_space_matches_the_issue():
    space = dict(make_space("resnet", ALL).genes)
    assert all(space[f"depths.{i}"] == (1, 3, 5, 7) for i in range(3))
