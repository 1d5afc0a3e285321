"""Reading a user's model file safely: never an unpickled module.

Three forms: a state_dict (``torch.load(..., weights_only=True)``) plus a registry architecture
JSON (``edgekd distill --teacher`` and ``edgekd compile`` both take it), an ExportedProgram
(``.pt2``, read with ``torch.export.load``), or an ONNX file (compiled by the ONNX-based backends:
onnxruntime, openvino).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd._io import write_bytes
from edgekd.errors import CompileError, ConfigError, DataError
from edgekd.models.registry import create_student, list_students
from edgekd.models.teacher import TeacherCNN
from edgekd.ort_session import ort_session
from edgekd.quant import prepare_qat
from edgekd.schema.student import set_card
from edgekd.targets import NumericFormat

ARCH_KEYS = ("schema", "name", "input_shape", "num_classes", "qat_format")  # arch JSON keys that are not kwargs


def load_weights_and_arch(weights: Path, arch_path: Path, input_shape, num_classes: int, flag: str) -> nn.Module:
    """A state_dict (``weights_only=True``) into a model built from its arch JSON: no object is unpickled.

    Raises:
        ConfigError: a file is missing, not JSON, not a state_dict, or does not fit the architecture
            (the message starts with ``flag``, the option the path came from).
        DataError: the JSON's input_shape or num_classes differ from the data's.
    """
    for p in (weights, arch_path):
        if not p.is_file():
            raise ConfigError(f"{flag}: {p} not found (a teacher is a state_dict file plus its architecture JSON)")
    arch = read_arch(arch_path, flag)
    model = model_from_arch(arch, input_shape, num_classes, f"{flag} {arch_path}")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a file it will not read
        raise ConfigError(f"{flag}: {weights} is not a state_dict readable with weights_only=True "
                          f"({type(exc).__name__}); save model.state_dict(), not the pickled model") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{flag}: {weights} holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"{flag}: {weights} does not fit the architecture in {arch_path}: "
                          f"{str(exc).splitlines()[-1].strip()}") from None
    return model.eval()


def read_arch(path: Path, flag: str):
    """An architecture JSON file's content; ConfigError (starting with ``flag``) when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{flag}: {path}: not JSON ({exc})") from None


def model_from_arch(arch, input_shape, num_classes: int, where: str) -> nn.Module:
    """The model an arch JSON names (a registry student or TeacherCNN), freshly initialized; with a
    ``qat_format``, prepared quantization-aware in it. Errors start with ``where``."""
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise ConfigError(f"{where}: expected {{\"name\": <architecture>, ...arguments}}")
    shape, classes = tuple(input_shape), int(num_classes)
    for key, have in (("input_shape", list(shape)), ("num_classes", classes)):
        if key in arch and arch[key] != have:
            raise DataError(f"{where}: {key} {arch[key]} but the data has {have}")
    kwargs = {k: v for k, v in arch.items() if k not in ARCH_KEYS}
    try:
        if arch["name"] == "TeacherCNN":
            model = TeacherCNN(shape, classes, **kwargs)
            set_card(model, arch={"name": "TeacherCNN", **kwargs})
        elif arch["name"] in list_students():
            model = create_student(arch["name"], shape, classes, **kwargs)
        else:
            raise ConfigError(f"unknown architecture {arch['name']!r}; valid: "
                              f"{', '.join(['TeacherCNN', *list_students()])}")
        if arch.get("qat_format"):  # scales, zero points and BN folding come back with the weights
            fmt = NumericFormat.model_validate(arch["qat_format"])
            model = prepare_qat(model, fmt, torch.zeros(1, *shape))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return model


ONNX_BACKENDS = ("onnxruntime", "openvino")


class OnnxModel(nn.Module):
    """An ONNX file as a module: ``forward`` runs it in ONNX Runtime (the fp32 reference the gate
    compares with); ONNX-based backends compile the file itself (``edgekd_onnx_path``)."""

    def __init__(self, path: Path):
        super().__init__()
        import onnx  # heavy SDK: imported on first use (only a user's ONNX file needs it)

        self.edgekd_onnx_path = Path(path)
        try:
            model = onnx.load(str(path))
            onnx.checker.check_model(model)
            self._session = ort_session(path, quiet=True)
        except Exception as exc:  # noqa: BLE001 - onnx/ORT raise many types for a bad file
            raise ConfigError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]})") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ConfigError(f"{path}: {len(inputs)} graph inputs; edgekd compiles one-input image models")
        self._input = inputs[0].name
        self.input_dims = [d if isinstance(d, int) else None for d in inputs[0].shape]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = self.input_dims[0]
        x = x.detach().cpu().numpy().astype(np.float32)
        if batch is None:
            return torch.from_numpy(self._session.run(None, {self._input: x})[0])
        outs = [self._session.run(None, {self._input: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
        return torch.from_numpy(np.concatenate(outs))


class ExportedModel(nn.Module):
    """An ExportedProgram as a plain module. Its graph refuses ``eval()`` (it is already in inference
    form), and a batch size fixed at export is fed in chunks of that size (last chunk zero-padded)."""

    def __init__(self, program):
        super().__init__()
        self.graph = program.module()
        user = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
        if len(user) != 1:
            raise ConfigError(f"the ExportedProgram takes {len(user)} inputs; edgekd compiles one-input image models")
        shape = next(n.meta["val"].shape for n in program.graph.nodes if n.op == "placeholder" and n.name == user[0])
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.input_dims = [d if isinstance(d, int) else None for d in shape]

    def train(self, mode: bool = True):
        self.training = mode  # the exported graph is inference-only; nothing below to switch
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.fixed_batch
        if b is None or len(x) == b:
            return self.graph(x)
        outs = []
        for i in range(0, len(x), b):
            chunk = x[i : i + b]
            n = len(chunk)
            if n < b:
                chunk = torch.cat([chunk, chunk.new_zeros(b - n, *chunk.shape[1:])])
            outs.append(self.graph(chunk)[:n])
        return torch.cat(outs)


def model_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".pt2":
        return "exported_program"
    return "state_dict"


def input_hw(path: Path) -> tuple[int, int] | None:
    """The model file's fixed input height and width, when it states them (ONNX, ExportedProgram)."""
    kind = model_kind(path)
    if kind == "onnx":
        dims = OnnxModel(path).input_dims
    elif kind == "exported_program":
        dims = ExportedModel(_exported(path)).input_dims
    else:
        return None
    if len(dims) == 4 and isinstance(dims[2], int) and isinstance(dims[3], int):
        return int(dims[2]), int(dims[3])
    return None


def _exported(path: Path):
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - a wrong or damaged archive
        raise ConfigError(f"{path}: not an ExportedProgram readable with torch.export.load "
                          f"({type(exc).__name__}); save it with torch.export.save(torch.export.export(...), "
                          f"PATH)") from None


def load_user_model(path: Path, arch: Path | None, val, num_classes: int, backend: str) -> nn.Module:
    """The user's model, in eval mode, checked against the validation data's inputs and the class count."""
    if not path.is_file():
        raise ConfigError(f"MODEL: {path}: file not found")
    kind = model_kind(path)
    if arch is not None and kind != "state_dict":
        raise ConfigError(f"--arch: only for a state_dict; {path.name} is a {kind.replace('_', ' ')}")
    if kind == "state_dict":
        model = load_weights_and_arch(path, arch or path.with_suffix(".json"), val.input_shape, num_classes, "MODEL")
    elif kind == "exported_program":
        model = ExportedModel(_exported(path))
    else:
        if backend not in ONNX_BACKENDS:
            raise ConfigError(f"MODEL: an ONNX file compiles for {', '.join(ONNX_BACKENDS)} targets; for "
                              f"{backend} pass a state_dict + --arch or an ExportedProgram (.pt2)")
        model = OnnxModel(path)
    x = val.x[:2]
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # noqa: BLE001 - shape mismatch and friends, named with the input
        raise ConfigError(f"MODEL: {path.name} does not run on the data's inputs of shape "
                          f"{tuple(x.shape[1:])}: {str(exc).splitlines()[0][:200]}") from None
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise ConfigError(f"MODEL: {path.name} gives outputs of shape {tuple(out.shape[1:])}; the data has "
                          f"{num_classes} classes")
    return model


def fp32_onnx_of(model, input_shape, path: Path, static_batch: int | None) -> Path | None:
    """For an :class:`OnnxModel`: its file as the backend's fp32 ONNX (batch made ``static_batch`` or
    symbolic); ``None`` for any other module (the backend exports it)."""
    source = getattr(model, "edgekd_onnx_path", None)
    if source is None:
        return None
    import onnx  # heavy SDK: imported on first use (only a user's ONNX file needs it)

    proto = onnx.load(str(source))
    for value in (*proto.graph.input, *proto.graph.output):
        dim = value.type.tensor_type.shape.dim
        if len(dim):
            if static_batch:
                dim[0].dim_value = static_batch
            else:
                dim[0].dim_param = "batch"
    if tuple(d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]) != tuple(input_shape):
        raise CompileError(f"{source}: input shape does not match the data's {tuple(input_shape)}")
    return write_bytes(path, proto.SerializeToString())
