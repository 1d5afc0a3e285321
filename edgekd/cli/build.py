"""``edgekd build``: distill, quantize, compile and validate a student for each target."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from edgekd.cli.common import (EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_INTERRUPTED, SEED_MAX, console,
                               print_error, setup_logging)
from edgekd.errors import ConfigError, DataError, EdgeKDError
from edgekd.interrupt import interrupted_at
from edgekd.logs import route_logs
from edgekd.schema.sections import Status  # stdlib only: --help stays light


def build(
    target: Optional[list[str]] = typer.Option(None, "--target", "-t",
                                               help="Target name or path to its TOML file; repeat for several "
                                                    "(default: x86-cpu-onnxruntime)."),
    all_targets: bool = typer.Option(False, "--all", help="Build every target in the targets folders."),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="Output folder; artifacts go to OUT/<target>/."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (default: mnist5k), or folder "
                                                     "(your images: --data-dir)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Your images, DATA_DIR/<class>/<image> "
                                                                     "(implies --dataset folder)."),
    val_dir: Optional[Path] = typer.Option(None, "--val-dir", help="Validation images in the same class "
                                                                   "folders (default: hold out --val-fraction)."),
    image_size: Optional[str] = typer.Option(None, "--image-size", metavar="N|HxW",
                                             help="Resize --data-dir images to N×N or H×W pixels (default 32)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="--data-dir images as 1 (grayscale) or 3 "
                                                                    "(RGB, default) channels."),
    val_fraction: float = typer.Option(0.2, min=0.01, max=0.9, help="Held-out share when the dataset has no "
                                                                    "test split and no --val-dir is given."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Your trained teacher: a state_dict (with "
                                           "--teacher-arch) or an ExportedProgram (.pt2); needed for an unlabeled "
                                           "--data-dir (DATA_DIR/<image>), whose labels it gives. Default: "
                                           "edgekd's teacher, trained once and cached."),
    teacher_arch: Optional[Path] = typer.Option(None, "--teacher-arch", help="The state_dict's architecture, "
                                                "JSON: {\"name\": \"TeacherCNN\" or a student, \"num_classes\": "
                                                "N, ...}. Default: --teacher with the suffix .json."),
    student: Optional[str] = typer.Option(None, help="Student registry name (default: a small ResNet)."),
    epochs: int = typer.Option(30, min=1, help="Distillation epochs."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, help="Seed for splits, initialisation and data order."),
    calib_size: Optional[int] = typer.Option(None, help="Calibration samples (default: the target's recipe)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted distillation."),
    search: bool = typer.Option(True, "--search/--no-search", help="Without --student, search one per numeric "
                                                                    "format (FLOPs); --no-search: the default."),
    qat: bool = typer.Option(False, "--qat", help="Distill the last epochs quantization-aware in the format."),
    qat_teacher: Optional[str] = typer.Option(None, "--qat-teacher", help="Who teaches the --qat epochs: self "
                                              "(the frozen float student), teacher or both (default: self)."),
    ship: str = typer.Option("auto", "--ship", help="Which artifact each target ships: auto (the student only "
                                                    "when it is faster than the teacher compiled for the same "
                                                    "runtime), student or teacher."),
    device: str = typer.Option("cpu", "--device", help="Where distillation trains: cpu (rebuilds bit-identical), "
                                                       "cuda, cuda:N or auto; the rest runs on the CPU."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Distill, quantize, compile and validate a student for each target, on the built-in data or your
    image folder (--data-dir).

    Targets sharing a numeric format share one distillation. Writes OUT/<target>/, OUT/manifest.json
    and OUT/report.html. Exit 0 only if every target was built and every target validated here
    passed its gate; a target built but not runnable here is listed as "not run here" and does not
    fail the build (it is never counted as passed); 1 otherwise; 2 for bad input.
    """
    # torch-bearing: imported when the command runs (see edgekd.cli.common)
    from edgekd.capability import short_reason
    from edgekd.distill.device import check_device
    from edgekd.matrix import build_all, resolve_targets
    from edgekd.report.console import print_summary

    setup_logging(verbose)
    if all_targets and target:
        console.print("[red]error:[/red] pass either --all or --target, not both")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:  # all target files and data options are checked before any work
        targets = resolve_targets(None if all_targets else (target or ["x86-cpu-onnxruntime"]))
        if ship not in ("auto", "student", "teacher"):
            raise ConfigError(f"--ship must be auto, student or teacher, got {ship!r}")
        check_device(device, "--device")
        _check_data_flags(dataset, data_dir, val_dir, image_size, channels)
        teacher_model = None
        if teacher is not None or teacher_arch is not None:
            from edgekd.cli.teacher_file import teacher_from_file  # torch-bearing: see edgekd.cli.common

            teacher_model = teacher_from_file(teacher, teacher_arch, data_dir, image_size, channels)
    except (ConfigError, DataError) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    command = "edgekd " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    fresh, log_file = not out.exists(), out / "build.log"
    try:
        with route_logs(console, verbose, log_file):  # other libraries' lines: to OUT/build.log
            matrix = build_all(teacher_model, targets=targets, out_dir=out, dataset=dataset, student=student,
                               epochs=epochs, seed=seed, qat_teacher=qat_teacher, calib_size=calib_size, resume=resume,
                               search=search, qat=qat, command=command, ship=ship,
                               data_dir=data_dir, val_dir=val_dir, image_size=image_size, channels=channels,
                               val_fraction=val_fraction, device=device)
    except (ConfigError, DataError) as exc:
        _drop_log(log_file, fresh)  # bad input writes nothing
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_GATE_FAILED) from None
    except KeyboardInterrupt as exc:  # Ctrl-C: say where, and how to go on
        console.print(f"[yellow]{interrupted_at(exc).message()}[/yellow]", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print_summary(matrix)
    for r in matrix.results:
        if r.status != Status.PASSED:
            colour = "yellow" if r.status == Status.NOT_RUN else "red"
            console.print(f"[{colour}]{r.status}[/{colour}] {r.target}: {escape(short_reason(str(r.reason)))}",
                          soft_wrap=True)  # the full reason: report.json, report.html
    console.print(f"report: {matrix.html_path}  manifest: {matrix.manifest_path}" +
                  (f"  other libraries' log: {log_file}" if log_file.exists() else ""))
    raise typer.Exit(0 if matrix.ok else EXIT_GATE_FAILED)


def _drop_log(log_file: Path, fresh: bool) -> None:
    """Remove the log (and the output folder if this run made it and it is empty) after bad input."""
    if fresh:
        log_file.unlink(missing_ok=True)
        try:
            log_file.parent.rmdir()
        except OSError:  # not empty or not there
            pass


def _check_data_flags(dataset, data_dir, val_dir, image_size, channels) -> None:
    """The data options of ``build``, named as typed, before anything is loaded or trained."""
    from edgekd.data.builtin import folder_options  # torch-bearing: see edgekd.cli.common

    if dataset == "folder" and data_dir is None:
        raise ConfigError("--dataset folder needs --data-dir DIR (DIR/<class>/<image>)")
    folder_only = [f for f, v in (("--val-dir", val_dir), ("--image-size", image_size), ("--channels", channels))
                   if v is not None]
    if folder_only and data_dir is None:
        raise ConfigError(f"{', '.join(folder_only)} only with --data-dir (your image folder)")
    if data_dir is not None and dataset not in (None, "folder", "fashion-mnist"):
        raise ConfigError(f"--data-dir: dataset {dataset!r} reads no folder; drop --dataset or --data-dir")
    if folder_only and dataset == "fashion-mnist":
        raise ConfigError(f"{', '.join(folder_only)}: fashion-mnist has its own size and test split")
    folder_options(image_size, channels, ("--image-size", "--channels"))
    for flag, path in (("--data-dir", data_dir), ("--val-dir", val_dir)):
        if path is not None and not path.is_dir():
            raise ConfigError(f"{flag} {path}: folder not found")
