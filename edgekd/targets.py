"""The target schema: one TOML file per device, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgekd.errors import ConfigError

_STRICT = ConfigDict(extra="forbid", frozen=True)
# a name becomes a folder under --out: letters, digits, '-', '_', '.' (not first), no separators
SLUG = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$"
_SLUG_RE = re.compile(SLUG)


def is_slug(name: str) -> bool:
    """Whether ``name`` is safe as one folder name (no '..', no separators, no leading dot)."""
    return isinstance(name, str) and _SLUG_RE.fullmatch(name) is not None


class NumericFormat(BaseModel):
    """What the backend computes in: weights and activations, symmetric or not, granularity."""

    model_config = _STRICT
    weights: Literal["fp32", "fp16", "int8", "int4", "int2"]  # int2: ternary W2A8 QAT
    activations: Literal["fp32", "fp16", "int8", "uint8", "int4", "uint4"]  # 4-bit: W4A4 QAT
    weight_granularity: Literal["per_channel", "per_tensor"] = "per_channel"
    weight_symmetric: bool = True
    activation_symmetric: bool = False
    # 7-bit int8 weights: true, false, or "auto" (where the compiling CPU is x86 without VNNI, whose ONNX
    # Runtime int8 kernels overflow on full-range weights; edgekd.quant.qdq)
    weight_reduce_range: bool | Literal["auto"] = False

    @property
    def is_quantized(self) -> bool:
        return self.weights in ("int8", "int4", "int2")

    @property
    def trains_aware(self) -> bool:
        """Whether quantization-aware distillation changes training: int8/int4 fake-quant, or fp16 rounding."""
        return self.is_quantized or self.weights == "fp16"

    @property
    def key(self) -> str:
        """Targets with the same key can share one (quantization-aware) distillation."""
        sym = "sym" if self.activation_symmetric else "asym"
        return f"w{self.weights}-a{self.activations}-{sym}-{self.weight_granularity}"


class ShapePolicy(BaseModel):
    model_config = _STRICT
    batch: Literal["dynamic", "static"] = "dynamic"
    static_batch: int = Field(1, ge=1, le=4096)


class LatencySpec(BaseModel):
    """The latency budget and how latency is measured or predicted on this device."""

    model_config = _STRICT
    budget_ms: float | None = Field(None, gt=0, le=3.6e6, allow_inf_nan=False)
    batch: int = Field(1, ge=1, le=4096)
    threads: int = Field(1, ge=1, le=1024)
    model: Literal["measured", "profile", "vela", "flops"] = "measured"
    rescale: Literal["other-cpu", "always", "never"] = Field(
        "other-cpu", description="rescale the latency profile by anchor networks timed here (5-15 s per input "
        "size): only one fitted on another CPU (default), also this CPU's own (its speed drifts between "
        "sessions, as a cloud VM's does), or never")


class Gate(BaseModel):
    model_config = _STRICT
    max_accuracy_drop: float = Field(1.0, ge=0, le=100, allow_inf_nan=False, description="points of top-1 below the teacher")
    min_agreement: float | None = Field(None, ge=0, le=1, description="top-1 agreement with the teacher")
    speed_gate: bool | Literal["profile"] = Field(False, description="ship fp32 if the int8 artifact is not faster "
                                                  "here: measured (true) or by this CPU's own latency profile "
                                                  "('profile', timed where it has none)")
    keep_sensitive_float: bool = Field(True, description="on a missed gate, keep the most sensitive layers "
                                       "in float and rebuild (QDQ backends)")


class CalibrationRef(BaseModel):
    model_config = _STRICT
    recipe: str = Field("minmax-256", pattern=SLUG, description="a recipe name from the calibration folders")

    @field_validator("recipe")
    @classmethod
    def _bare_name(cls, value: str) -> str:
        if value.endswith(".toml"):  # a name, never a path: the recipe is looked up in the calibration folders
            raise ValueError("must be a recipe name (e.g. 'minmax-256'), not a file name")
        return value


class Target(BaseModel):
    """One device: what runs it, in which numeric format, under which budget and gate."""

    model_config = _STRICT
    name: str = Field(..., pattern=SLUG, description="a safe folder name: letters, digits, -, _, . (not first)")
    description: str = ""
    backend: str = Field(..., pattern=SLUG)
    device: str
    format: NumericFormat
    ops: tuple[str, ...] = Field(..., min_length=1, description="operators the device runs")
    shapes: ShapePolicy = ShapePolicy()
    latency: LatencySpec = LatencySpec()
    gate: Gate = Gate()
    calibration: CalibrationRef = CalibrationRef()
    arch: str | None = Field(None, description="CPU architecture of the device (platform.machine() names, "
                             "e.g. 'aarch64'); None: whatever machine runs the backend. When it differs from "
                             "this machine, the artifact may be validated here but its latency is not the "
                             "device's")
    backend_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="backend-specific settings, e.g. Vela's accelerator config")
    source_path: str | None = Field(None, exclude=True)


class CalibrationRecipe(BaseModel):
    """How calibration samples are chosen and which calibrator turns them into ranges."""

    model_config = _STRICT
    name: str
    samples: int = Field(256, ge=1, le=1_000_000)
    selection: Literal["stratified", "random", "first"] = "stratified"
    method: Literal["minmax", "percentile", "entropy", "mse"] = "minmax"
    percentile: float = Field(99.99, gt=50, le=100)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    # take each layer's mean weight-rounding error out of its bias (edgekd.quant.bias_correction):
    # EfficientNet-Lite1 int8 agreement with fp32 72.8 % -> 85.3 %; small students unchanged
    bias_correction: bool = True


def search_dirs(kind: str) -> list[Path]:
    """Where ``targets/`` or ``calibration/`` files are looked up, first match wins."""
    dirs = []
    env = os.environ.get(f"EDGEKD_{kind.upper()}_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(Path.cwd() / kind)
    package = Path(__file__).resolve().parent
    dirs += [package / "_bundled" / kind, package.parent / kind]
    seen, unique = set(), []
    for d in dirs:
        if d.resolve() not in seen and d.is_dir():
            seen.add(d.resolve())
            unique.append(d)
    return unique


def _resolve(kind: str, name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or os.sep in text:
        if not path.exists():
            raise ConfigError(f"{path}: {kind[:-1] if kind.endswith('s') else kind} file not found")
        return path
    for folder in search_dirs(kind):
        candidate = folder / f"{text}.toml"
        if candidate.exists():
            return candidate
    known = sorted({p.stem for d in search_dirs(kind) for p in d.glob("*.toml")})
    raise ConfigError(f"unknown {kind} {text!r}; valid: {', '.join(known) or '(none found)'}")


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files must be UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: cannot parse TOML: nested too deeply") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse TOML: {exc}") from exc


def _validation_message(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{path}: field '{field}': {what}")
    return "\n".join(lines)


def load_target(name_or_path: str | os.PathLike | Target) -> Target:
    """Load a target by bare name (``x86-cpu-onnxruntime``) or path to its TOML file."""
    if isinstance(name_or_path, Target):
        # model_copy/model_construct skip validation; the name still becomes a folder under --out
        for field in ("name", "backend"):
            if not is_slug(getattr(name_or_path, field)):
                raise ConfigError(f"target {name_or_path.name!r}: field '{field}': {getattr(name_or_path, field)!r} "
                                  "is not a safe name (letters, digits, -, _, . not first; no separators)")
        return name_or_path
    path = _resolve("targets", name_or_path)
    raw = _read_toml(path)
    try:
        target = Target.model_validate({**raw, "source_path": str(path)})
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc
    if target.name != path.stem:
        raise ConfigError(f"{path}: field 'name': {target.name!r} must match the file name {path.stem!r}")
    return target


def load_recipe(name_or_path: str | os.PathLike) -> CalibrationRecipe:
    path = _resolve("calibration", name_or_path)
    raw = _read_toml(path)
    try:
        recipe = CalibrationRecipe.model_validate({"name": path.stem, **raw})
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc
    return recipe


def list_targets() -> list[Target]:
    """Every target found in the search folders (first definition of a name wins)."""
    found: dict[str, Path] = {}
    for folder in search_dirs("targets"):
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, path)
    return [load_target(path) for _, path in sorted(found.items())]
