"""Weighted layers of a PT2E (torch.export) graph by module name: which a quantizer may touch, and which the
converted graph really quantized.

A layer is named by its module's path in the user's model (``stages.0.0.body.3``), as
``torch.export`` records it in each node's ``nn_module_stack``: the names ExecuTorch's per-layer
float fallback keeps in float and reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import fx

WEIGHTED_OPS = {torch.ops.aten.conv2d.default, torch.ops.aten.linear.default, torch.ops.aten.conv1d.default}


def _normalized(path: str) -> str:
    return path.removeprefix("L['self'].")


def module_names(node: fx.Node) -> list[str]:
    """Every module ``node`` was traced inside, outermost first."""
    return [_normalized(path) for path, _ in (node.meta.get("nn_module_stack") or {}).values()]


def from_layers(names: Iterable[str]) -> Callable[[fx.Node], bool]:
    """A node filter: True for nodes traced inside one of the modules ``names``."""
    wanted = set(names)
    return lambda node: bool(wanted.intersection(module_names(node)))


def quantized_layers(converted: fx.GraphModule) -> list[str]:
    """Module names of the conv/linear layers whose weight a converted PT2E graph dequantizes, in graph order."""
    found = []
    for node in converted.graph.nodes:
        if node.op != "call_function" or node.target not in WEIGHTED_OPS or len(node.args) < 2:
            continue
        weight = node.args[1]
        if isinstance(weight, fx.Node) and "dequantize" in str(weight.target):
            names = module_names(node)
            if names and names[-1] not in found:
                found.append(names[-1])
    return found
