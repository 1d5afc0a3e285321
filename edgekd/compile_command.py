"""What ``edgekd compile`` needs beyond ``edgekd.compile``: the data and the user's model file, read
safely (:mod:`edgekd.models.loading`), then compiled and gated."""

from __future__ import annotations

from pathlib import Path

from edgekd.compile import compile as compile_model
from edgekd.data.builtin import load_train_val
from edgekd.errors import ConfigError
from edgekd.models.loading import input_hw, load_user_model
from edgekd.targets import load_target

__all__ = ["run_compile"]


def run_compile(model_path: Path, target: str, out: Path, *, arch: Path | None = None, dataset: str | None = None,
                data_dir: Path | None = None, val_dir: Path | None = None, image_size=None, channels=None,
                val_fraction: float = 0.2, seed: int = 0, calib_size: int | None = None,
                validate_samples: int | None = None):
    """Load the data and the user's model (refusing bad input before anything is written), compile for
    ``target`` into ``out/<target>/`` and gate it on the validation split; returns the artifact."""
    tgt = load_target(target)
    if not model_path.is_file():
        raise ConfigError(f"MODEL: {model_path}: file not found")
    if image_size is None and (dataset == "folder" or data_dir is not None):
        hw = input_hw(model_path)  # a folder is resized to what the model file states
        image_size = f"{hw[0]}x{hw[1]}" if hw else None
    bundle, train, val = load_train_val(dataset, data_dir, val_dir, image_size, channels,
                                        val_fraction=val_fraction, seed=seed)
    num_classes = len(bundle.spec.labels or ()) or int(train.y.max()) + 1
    model = load_user_model(model_path, arch, val, num_classes, tgt.backend)
    return compile_model(model, tgt, train, out, spec=bundle.spec, calib_size=calib_size, val=val,
                         validate_samples=validate_samples)
