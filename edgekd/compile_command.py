"""What ``edgekd compile`` needs beyond ``edgekd.compile``: reading a user's model file safely.

Three forms, none of them an unpickled module: a state_dict (``weights_only=True``) plus a registry
architecture JSON (as ``edgekd distill --teacher`` takes), an ExportedProgram (``.pt2``, read with
``torch.export.load``), or an ONNX file (compiled by the ONNX-based backends: onnxruntime, openvino).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.errors import CompileError, ConfigError

ONNX_BACKENDS = ("onnxruntime", "openvino")


class OnnxModel(nn.Module):
    """An ONNX file as a module: ``forward`` runs it in ONNX Runtime (the fp32 reference the gate
    compares with); ONNX-based backends compile the file itself (``edgekd_onnx_path``)."""

    def __init__(self, path: Path):
        super().__init__()
        import onnx
        import onnxruntime as ort

        self.edgekd_onnx_path = Path(path)
        try:
            model = onnx.load(str(path))
            onnx.checker.check_model(model)
            so = ort.SessionOptions()
            so.log_severity_level = 3
            self._session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
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


def load_user_model(path: Path, arch: Path | None, data, backend: str) -> nn.Module:
    """The user's model, in eval mode, checked against the data's input shape and class count."""
    if not path.is_file():
        raise ConfigError(f"MODEL: {path}: file not found")
    kind = model_kind(path)
    if arch is not None and kind != "state_dict":
        raise ConfigError(f"--arch: only for a state_dict; {path.name} is a {kind.replace('_', ' ')}")
    if kind == "state_dict":
        from edgekd.distill.command import _load_weights_and_arch

        model = _load_weights_and_arch(path, arch or path.with_suffix(".json"), data, "MODEL")
    elif kind == "exported_program":
        model = ExportedModel(_exported(path))
    else:
        if backend not in ONNX_BACKENDS:
            raise ConfigError(f"MODEL: an ONNX file compiles for {', '.join(ONNX_BACKENDS)} targets; for "
                              f"{backend} pass a state_dict + --arch or an ExportedProgram (.pt2)")
        model = OnnxModel(path)
    x = data.val.x[:2]
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # noqa: BLE001 - shape mismatch and friends, named with the input
        raise ConfigError(f"MODEL: {path.name} does not run on the data's inputs of shape "
                          f"{tuple(x.shape[1:])}: {str(exc).splitlines()[0][:200]}") from None
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise ConfigError(f"MODEL: {path.name} gives outputs of shape {tuple(out.shape[1:])}; the data has "
                          f"{data.num_classes} classes")
    return model


def fp32_onnx_of(model, input_shape, path: Path, static_batch: int | None) -> Path | None:
    """For an :class:`OnnxModel`: its file as the backend's fp32 ONNX (batch made ``static_batch`` or
    symbolic); ``None`` for any other module (the backend exports it)."""
    source = getattr(model, "edgekd_onnx_path", None)
    if source is None:
        return None
    import onnx

    from edgekd._io import write_bytes

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


def run_compile(model_path: Path, target: str, out: Path, *, arch: Path | None = None, dataset: str | None = None,
                data_dir: Path | None = None, val_dir: Path | None = None, image_size=None, channels=None,
                val_fraction: float = 0.2, seed: int = 0, calib_size: int | None = None,
                validate_samples: int | None = None):
    """Load the data and the user's model (refusing bad input before anything is written), compile for
    ``target`` into ``out/<target>/`` and gate it on the validation split; returns the artifact."""
    from edgekd.compile import compile as compile_model
    from edgekd.data.builtin import load_train_val
    from edgekd.targets import load_target

    tgt = load_target(target)
    if not model_path.is_file():
        raise ConfigError(f"MODEL: {model_path}: file not found")
    if image_size is None and (dataset == "folder" or data_dir is not None):
        hw = input_hw(model_path)  # a folder is resized to what the model file states
        image_size = f"{hw[0]}x{hw[1]}" if hw else None
    bundle, train, val = load_train_val(dataset, data_dir, val_dir, image_size, channels,
                                        val_fraction=val_fraction, seed=seed)

    class _Data:  # what the arch loader reads: the shapes and the class count
        pass

    data = _Data()
    data.train, data.val, data.num_classes = train, val, len(bundle.spec.labels or ()) or int(train.y.max()) + 1
    model = load_user_model(model_path, arch, data, tgt.backend)
    return compile_model(model, tgt, train, out, spec=bundle.spec, calib_size=calib_size, val=val,
                         validate_samples=validate_samples)
