"""``edgekd distill``'s inputs, each checked and named by its option before anything is trained or written."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from edgekd.cli.distill_report import arch_card
from edgekd.cli.options import parameters, parse_key_values
from edgekd.data import load_dataset, split
from edgekd.distill.losses import create_loss
from edgekd.errors import ConfigError, DataError
from edgekd.models import create_student, student_info
from edgekd.models.loading import load_weights_and_arch
from edgekd.stages import Data, prepare_teacher
from edgekd.stages.preflight import check_student_numbers
from edgekd.targets import load_target


def make_loss(name: str, pairs: list[str]):
    """``--loss`` and its ``--loss-opt`` pairs → the loss."""
    try:
        cls = type(create_loss(name))
    except ConfigError as exc:
        raise ConfigError(f"--loss: {exc}") from None
    kwargs = parse_key_values("--loss-opt", pairs, parameters(cls), f"loss {name!r}")
    try:
        return create_loss(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--loss-opt: loss {name!r} rejected {kwargs}: {exc}") from None


def student_kwargs(name: str, pairs: list[str]) -> dict:
    """``--student`` and its ``--student-opt`` pairs → the factory's keyword arguments."""
    try:
        info = student_info(name)
    except ConfigError as exc:
        raise ConfigError(f"--student: {exc}") from None
    kwargs = parse_key_values("--student-opt", pairs, parameters(info.factory, ("input_shape", "num_classes")),
                              f"student {name!r}")
    check_student_numbers(kwargs, "--student-opt")  # widths=[1e5, ...] would allocate hundreds of GB
    return kwargs


def build_student(name: str, kwargs: dict, data, seed: int):
    torch.manual_seed(seed)  # the initial weights, so a rerun with the same --seed is the same run
    try:
        return create_student(name, data.train.input_shape, data.num_classes, **kwargs)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"--student-opt: {exc}") from None


def qat_format(target: Optional[str], qat: bool):
    """The numeric format ``--qat`` trains in (``None`` without ``--qat``)."""
    if qat and not target:
        raise ConfigError("--qat needs --target (a target name or TOML path; `edgekd targets` lists them)")
    if target and not qat:
        raise ConfigError("--target only sets the format --qat trains in; add --qat, or drop --target")
    if not qat:
        return None
    try:
        fmt = load_target(target).format
    except ConfigError as exc:
        raise ConfigError(f"--target: {exc}") from None
    if not fmt.is_quantized and fmt.weights != "fp16":  # what prepare_qat accepts, checked before training
        raise ConfigError(f"--target {target}: format {fmt.key} is fp32, nothing to train quantization-aware; "
                          "drop --qat")
    return fmt


def check_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    # checkpoint names as edgekd.distill.api writes them
    if resume and not any((out / n).exists() for n in ("distill.ckpt", "distill.qat.ckpt")):
        raise ConfigError(f"--resume: no checkpoint in {out} (distill.ckpt); run once without --resume")


def distill_data(dataset: str, data_dir: Optional[Path], val_fraction: float, seed: int):
    """The dataset split into train and val (its test split, else a seeded hold-out of ``val_fraction``)."""
    if dataset == "folder" and data_dir is None:
        raise ConfigError("--data-dir: --dataset folder needs the image folder (DATA_DIR/<class>/<image>)")
    try:
        bundle = load_dataset(dataset, **({"root": data_dir} if data_dir is not None else {}))
    except TypeError:
        raise ConfigError(f"--data-dir: dataset {dataset!r} reads no folder; drop --data-dir") from None
    except DataError as exc:
        raise DataError(f"{'--data-dir' if data_dir is not None else '--dataset'}: {exc}") from None
    if bundle.test is not None:
        train, val = bundle.train, bundle.test
    else:
        val, train = split(bundle.train, max(1, int(len(bundle.train) * val_fraction)), seed)
    return Data(bundle.name, train, val, bundle.spec, True, True)


def distill_teacher(path: Optional[Path], arch_path: Optional[Path], data, loss_fn, seed: int, progress: bool):
    """The teacher (``--teacher`` weights + arch JSON, else edgekd's default) and where it came from."""
    if path is None and arch_path is not None:
        raise ConfigError("--teacher-arch needs --teacher (the weights)")
    if path is None and not loss_fn.needs_teacher:
        return None, {"arch": None, "source": "none (the loss needs no teacher)"}
    model = None
    if path is not None:
        model = load_weights_and_arch(path, arch_path or path.with_suffix(".json"), data.train.input_shape,
                                      data.num_classes, "--teacher")
    try:
        teacher, info = prepare_teacher(model, data, seed, progress)
    except DataError as exc:
        raise DataError(f"--teacher: {exc}") from None
    if path is not None:
        info.update(arch=arch_card(teacher, data), weights=str(path))
    return teacher, info
