"""The compiler under ``edgekd.compile``: calibration samples picked as the recipe says, the model handed to its
backend, the artifact written into a staging folder and moved into place only once compilation succeeded.
No validation here (``edgekd.compile(val=...)`` adds the gate), so validation may recompile through it."""

from __future__ import annotations

import shutil

import numpy as np
import torch
from torch import nn

from edgekd import outdir
from edgekd._io import staging_dir
from edgekd.backends.base import Artifact, backend_entry, get_backend
from edgekd.data.sources import ArrayData, as_array_data
from edgekd.data.spec import SPEC_FILENAME, PreprocessSpec, identity_spec
from edgekd.data.splits import stratified_indices
from edgekd.errors import DataError, MissingExtraError
from edgekd.quant import is_qat_model, to_float
from edgekd.schema.student import card_of, set_card
from edgekd.targets import CalibrationRecipe, Target, load_recipe, load_target

MIN_CALIBRATION_SAMPLES = 8


def select_calibration(data: ArrayData, recipe: CalibrationRecipe, size: int | None = None) -> ArrayData:
    """Pick the calibration samples as the recipe says (stratified by default, seeded)."""
    n = recipe.samples if size is None else size
    if n < MIN_CALIBRATION_SAMPLES:
        raise DataError(f"calibration: {n} samples requested; at least {MIN_CALIBRATION_SAMPLES} are needed")
    if len(data) < MIN_CALIBRATION_SAMPLES:
        raise DataError(f"calibration: only {len(data)} samples available; at least "
                        f"{MIN_CALIBRATION_SAMPLES} are needed (recipe {recipe.name!r} asks for {n})")
    n = min(n, len(data))
    if recipe.selection == "first":
        index = np.arange(n)
    elif recipe.selection == "random":
        index = np.sort(np.random.default_rng(recipe.seed).permutation(len(data))[:n])
    else:
        index, _ = stratified_indices(data.y.numpy(), n, recipe.seed)
    return data.subset(index)


def compile_artifact(model: nn.Module, target: str | Target, calib, out_dir="build", *,
                     spec: PreprocessSpec | None = None, calib_size: int | None = None,
                     keep_float: list[str] | None = None) -> Artifact:
    """``edgekd.compile`` without ``val``: compile ``model`` for ``target`` into ``out_dir/<target>/``."""
    target = load_target(target)
    recipe = load_recipe(target.calibration.recipe)
    backend_name = target.backend
    backend = _backend_or_explain(backend_name)
    if calib is None:
        raise DataError(f"compile for {target.name}: calibration data is required (calib=...)")
    if isinstance(calib, np.ndarray):
        calib = (calib, np.zeros(len(calib), dtype=np.int64))
    calib_data = select_calibration(as_array_data(calib, "calib"), recipe, calib_size)
    if spec is None:
        spec = identity_spec(calib_data.input_shape, _num_outputs(model, calib_data))
    if tuple(spec.input_shape) != calib_data.input_shape:
        raise DataError(f"calib: inputs have shape {calib_data.input_shape}, the preprocessing spec says "
                        f"{tuple(spec.input_shape)}")
    model, qat_note = model_for_backend(model, backend, target)
    final = outdir.child(out_dir, target.name)  # inside out_dir, whatever the name
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(final.parent, f".{target.name}.")
    outdir.mark_created(staging)  # a rebuild may replace it; a killed compile's leftover is cleaned later
    try:
        extra = {"keep_float": list(keep_float)} if keep_float else {}
        artifact = backend.compile(model, target, calib_data.x.numpy(), staging, spec, recipe=recipe, **extra)
        artifact.details["calibration"] = {"recipe": recipe.name, "samples": len(calib_data),
                                           "method": recipe.method, "selection": recipe.selection}
        if qat_note:
            artifact.details["qat"] = qat_note
        spec.save(staging / SPEC_FILENAME)
        artifact.files["preprocess"] = SPEC_FILENAME
        artifact.save()
        if final.exists() or final.is_symlink():
            outdir.remove_created(final, out_dir)  # only a folder edgekd made, inside out_dir
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    artifact = Artifact.read(final)
    return artifact


def model_for_backend(model: nn.Module, backend, target: Target) -> tuple[nn.Module, str | None]:
    """A QAT student as the backend can take it: backends that export its learned scales get it as it
    is; the others get its float twin (quantization-aware trained weights, BatchNorm folded) and
    calibrate it like any float model, which the artifact's details say."""
    if not is_qat_model(model) or backend.accepts_qat:
        return model, None
    if not target.format.is_quantized:  # fp16: the QAT student exports as a plain graph of fp16-exact weights
        return model, f"student trained with {target.format.weights} rounding; exported with fp16-exact weights"
    twin = to_float(model).eval()
    set_card(twin, arch=card_of(model).arch)
    return twin, (f"student trained quantization-aware; the {backend.name} backend re-calibrates its float twin "
                  "(QAT weights kept, learned activation scales not carried)")


def _num_outputs(model: nn.Module, data: ArrayData) -> int:
    with torch.no_grad():
        return int(model.eval()(data.x[:2]).shape[1])


def _backend_or_explain(name: str):
    entry = backend_entry(name)
    try:
        backend = get_backend(name)
    except ImportError as exc:
        raise MissingExtraError(name, entry.extra or "all") from exc
    return backend
