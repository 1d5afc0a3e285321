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
