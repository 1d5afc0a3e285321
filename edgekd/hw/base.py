"""The latency-model interface every per-target model implements (profile, Vela, FLOPs proxy)."""

from __future__ import annotations


class LatencyModel:
    """Predicts a registry student's latency on one target.

    Attributes:
        kind: ``"profile"`` (fitted on measurements), ``"vela"`` (Arm Vela estimate) or ``"flops"``
            (no latency model: the value is a FLOPs proxy, comparable only between candidates).
        source: where the numbers come from (file, machine, runtime versions, date).
    """

    kind: str = ""
    source: dict

    def predict_ms(self, arch: dict, input_shape, num_classes: int = 10) -> float:
        raise NotImplementedError


FP32_MARGIN = 0.05  # fp32 replaces the target's int8 only when clearly faster: near a tie, noise must not flip it


def fp32_is_faster(int8_ms: float, fp32_ms: float) -> bool:
    """The speed gate's rule: ship fp32 when it is at least :data:`FP32_MARGIN` faster than int8."""
    return fp32_ms < int8_ms * (1 - FP32_MARGIN)
