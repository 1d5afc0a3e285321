"""What the stages of one build share: the prepared data, the build's options and the build context."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from torch import nn

from edgekd.data.sources import ArrayData
from edgekd.data.spec import PreprocessSpec
from edgekd.distill.losses import DistillLoss
from edgekd.distill.trainer import TrainConfig


@dataclass
class Data:
    """The train and validation data of a build, with their preprocessing spec."""

    name: str
    train: ArrayData
    val: ArrayData
    spec: PreprocessSpec
    augment: bool  # the built-in datasets train augmented by default, user data does not
    builtin: bool
    labels_from: str = "labels"  # "teacher": an unlabeled folder; accuracy then means agreement with the teacher

    @property
    def num_classes(self) -> int:  # the spec's too: a teacher's labels need not use every class
        return max(self.train.num_classes, self.val.num_classes, self.spec.num_classes)


@dataclass(frozen=True)
class BuildOptions:
    """The knobs of ``edgekd.build``/``build_all`` (see their docstrings) that every stage may read."""

    student: object = None
    loss: DistillLoss | None = None
    qat_teacher: str | None = None
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    augment: bool | None = None
    calib_size: int | None = None
    resume: bool = False
    progress: bool = True
    latency_runs: int = 200
    search: bool = True
    qat: bool = False
    ship: str = "auto"
    device: str = "cpu"


DATA_ARGUMENTS = ("train", "val", "dataset", "spec", "val_fraction", "seed", "data_dir", "val_dir", "image_size",
                  "channels")


def split_arguments(arguments: dict) -> tuple[BuildOptions, dict]:
    """``build``/``build_all``'s arguments → (the options every stage reads, :func:`prepare_data`'s keywords)."""
    options = BuildOptions(**{f.name: arguments[f.name] for f in fields(BuildOptions)})
    return options, {name: arguments[name] for name in DATA_ARGUMENTS}


@dataclass
class BuildContext:
    """One build: its data, teacher, options and output folder, shared by every target and stage.

    ``raise_errors``: ``edgekd.build`` (one target) lets a stage's exception reach the caller;
    ``build_all`` records it as that target's ``error`` and goes on with the other targets.
    """

    data: Data
    teacher: nn.Module
    teacher_info: dict
    loss: DistillLoss
    options: BuildOptions
    out_dir: Path
    raise_errors: bool = False
    teacher_view: dict = field(default_factory=dict)  # the teacher's validation logits, computed once
    baselines: dict = field(default_factory=dict)  # target name -> TeacherArtifact
    started: float = field(default_factory=time.perf_counter)

    @property
    def settings(self) -> dict:
        """The training settings recorded in the manifest (and shared by every distillation)."""
        o = self.options
        return dict(epochs=o.epochs, batch_size=o.batch_size, lr=o.lr, seed=o.seed, progress=o.progress,
                    resume=o.resume, augment=self.data.augment if o.augment is None else o.augment, device=o.device)

    def train_config(self, label: str) -> TrainConfig:
        """The distillation recipe; its checkpoint lives in ``out_dir/_work/<label>/`` so a rerun resumes it."""
        return TrainConfig(**self.settings, checkpoint=str(self.out_dir / "_work" / label / "distill.ckpt"))


def recorded_settings(config: TrainConfig) -> dict:
    return {k: v for k, v in asdict(config).items() if k != "checkpoint"}
