"""``edgekd build --teacher FILE``: the user's teacher from a file, never an unpickled module."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from edgekd.data.builtin import folder_options
from edgekd.data.formats import is_unlabeled_folder
from edgekd.errors import ConfigError
from edgekd.models.loading import ExportedModel, _exported, load_weights_and_arch, model_kind, read_arch


def teacher_from_file(path: Path | None, arch: Path | None, data_dir: Path | None, image_size, channels) -> nn.Module:
    """A state_dict + architecture JSON, or an ExportedProgram (.pt2), as a teacher in eval mode.

    A state_dict's input shape and class count come from its JSON (``input_shape``, ``num_classes``),
    else from ``--image-size``/``--channels`` and the class folders of ``data_dir``; an unlabeled folder
    has no class folders, so its teacher's JSON must state ``num_classes``.

    Raises:
        ConfigError: naming --teacher or --teacher-arch.
    """
    if path is None:
        raise ConfigError("--teacher-arch needs --teacher (the weights)")
    if not path.is_file():
        raise ConfigError(f"--teacher: {path}: file not found")
    kind = model_kind(path)
    if kind == "onnx":
        raise ConfigError("--teacher: an ONNX teacher cannot be distilled from here; pass a state_dict with "
                          "--teacher-arch, or an ExportedProgram (.pt2)")
    if kind == "exported_program":
        if arch is not None:
            raise ConfigError(f"--teacher-arch: only for a state_dict; {path.name} is an ExportedProgram")
        return ExportedModel(_exported(path))
    arch = arch or path.with_suffix(".json")
    if not arch.is_file():
        raise ConfigError(f"--teacher-arch: {arch} not found (a state_dict teacher needs its architecture JSON)")
    spec = read_arch(arch, "--teacher-arch")
    if not isinstance(spec, dict):
        raise ConfigError(f"--teacher-arch: {arch}: expected a JSON object")
    input_shape = spec.get("input_shape") or _folder_shape(image_size, channels)
    classes = spec.get("num_classes") or _class_folders(data_dir, arch)
    return load_weights_and_arch(path, arch, input_shape, classes, "--teacher")


def _folder_shape(image_size, channels) -> tuple[int, int, int]:
    options = folder_options(image_size, channels, ("--image-size", "--channels"))
    size = options.get("size", (32, 32))
    return (1 if options.get("color") == "gray" else 3, *size)


def _class_folders(data_dir: Path | None, arch: Path) -> int:
    if data_dir is None or is_unlabeled_folder(data_dir):
        raise ConfigError(f"--teacher-arch: {arch} does not say num_classes, and "
                          f"{'the built-in dataset' if data_dir is None else data_dir} has no class folders "
                          "to count; add \"num_classes\": N to the JSON")
    return sum(1 for p in data_dir.iterdir() if p.is_dir())
