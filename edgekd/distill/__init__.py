"""Distillation: the trainer, checkpoints, hooks and the loss family."""

from edgekd.distill.trainer import TrainConfig, TrainResult, evaluate, fit, predict

__all__ = ["TrainConfig", "TrainResult", "evaluate", "fit", "predict"]
