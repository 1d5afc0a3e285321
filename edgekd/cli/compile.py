"""``edgekd compile``: compile your own model file for a target and gate it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from edgekd.cli.common import (EXIT_BAD_INPUT, EXIT_GATE_FAILED, SEED_MAX, console, print_error,
                               print_error_one_line, setup_logging)
from edgekd.errors import ConfigError, DataError, EdgeKDError
from edgekd.schema.sections import Status  # stdlib only: --help stays light


def compile_model(
    model: Path = typer.Argument(..., help="Your model: a state_dict (.pt/.pth, read with weights_only=True) "
                                           "plus its architecture JSON (--arch), an ExportedProgram (.pt2, "
                                           "torch.export.save) or an ONNX file. Never an unpickled module."),
    target: str = typer.Option("x86-cpu-onnxruntime", "--target", "-t", help="Target name or TOML path."),
    arch: Optional[Path] = typer.Option(None, "--arch", help="For a state_dict: {\"name\": <registry name or "
                                                             "TeacherCNN>, ...arguments} (default: MODEL with "
                                                             "the suffix .json)."),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="Output folder; the artifact goes to OUT/<target>/."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset for calibration and the gate "
                                                     "(default: mnist5k), or folder (--data-dir)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Your images, DATA_DIR/<class>/<image>: "
                                                                     "calibration (and the gate's held-out share)."),
    val_dir: Optional[Path] = typer.Option(None, "--val-dir", help="Validation images for the gate, in the same "
                                                                   "class folders (default: hold out --val-fraction)."),
    image_size: Optional[str] = typer.Option(None, "--image-size", metavar="N|HxW",
                                             help="Resize folder images (default: the model file's input size, "
                                                  "else 32)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="Folder images as 1 or 3 channels."),
    val_fraction: float = typer.Option(0.2, min=0.01, max=0.9, help="Held-out share without --val-dir."),
    calib_size: Optional[int] = typer.Option(None, help="Calibration samples (default: the target's recipe)."),
    validate_samples: Optional[int] = typer.Option(None, "--validate-samples", min=0,
                                                   help="Cap on validation samples (default: all; 200 on "
                                                        "emulated runtimes; 0: no cap)."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, help="Seed for the held-out split."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Compile your own model for a target and gate it: exit 0 when the artifact passes the target's
    gate (or could not run here, said so), 1 when it fails, 2 for bad input."""
    from edgekd.compile_command import run_compile  # torch-bearing: see edgekd.cli.common

    setup_logging(verbose)
    try:
        artifact = run_compile(model, target, out, arch=arch, dataset=dataset, data_dir=data_dir, val_dir=val_dir,
                               image_size=image_size, channels=channels, val_fraction=val_fraction, seed=seed,
                               calib_size=calib_size, validate_samples=validate_samples)
    except (ConfigError, DataError) as exc:
        print_error_one_line(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_GATE_FAILED) from None
    v = artifact.verdict
    ci = f" (95% CI {v.agreement_ci95[0] * 100:.1f}-{v.agreement_ci95[1] * 100:.1f}%)" if v.agreement_ci95 else ""
    agree = f"{v.agreement * 100:.2f}%" if v.agreement is not None else "n/a"
    console.print(f"{v.target}: gate {v.status}; top-1 agreement {agree}{ci} on {v.samples} samples; "
                  f"artifact {artifact.path}", soft_wrap=True)
    for reason in v.reasons:
        console.print(f"  {escape(reason)}", soft_wrap=True)
    if v.recovery:
        console.print(f"  float fallback: {escape(str(v.recovery))}", soft_wrap=True)
    if v.status == Status.FAILED:
        raise typer.Exit(EXIT_GATE_FAILED)
