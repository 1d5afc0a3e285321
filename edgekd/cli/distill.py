"""``edgekd distill``: distill a teacher into a registry student on a dataset; optionally quantization-aware."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from edgekd.cli.common import (EXIT_BAD_INPUT, EXIT_GATE_FAILED, SEED_MAX, console, print_error,
                               print_error_one_line, setup_logging)
from edgekd.errors import CheckpointError, ConfigError, DataError, EdgeKDError


def distill(
    dataset: str = typer.Option("mnist5k", help="Built-in dataset: digits, mnist5k, fashion-mnist, or folder "
                                                "(an image folder DATA_DIR/<class>/<image>)."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder read by --dataset folder (images) or "
                                                       "fashion-mnist (its IDX files)."),
    student: str = typer.Option("resnet", help="Student registry name (resnet, mobilenetv2)."),
    student_opt: Optional[list[str]] = typer.Option(None, "--student-opt", metavar="KEY=VALUE",
                                                    help="Student factory argument, JSON value; repeatable "
                                                         "(--student-opt widths=[8,16,32])."),
    teacher: Optional[Path] = typer.Option(None, help="Teacher weights: a state_dict saved with torch.save("
                                                      "model.state_dict(), PATH), read with weights_only=True, "
                                                      "plus its architecture as JSON (see --teacher-arch). "
                                                      "Default: edgekd's teacher, trained once and cached."),
    teacher_arch: Optional[Path] = typer.Option(None, help="The teacher's architecture, JSON: {\"name\": "
                                                           "<student registry name or TeacherCNN>, ...factory "
                                                           "arguments} (a student.json written here works). "
                                                           "Default: --teacher with the suffix .json."),
    loss: str = typer.Option("kd", help="Distillation loss registry name (kd, topkld, dkd, dist, fitnet, ...)."),
    loss_opt: Optional[list[str]] = typer.Option(None, "--loss-opt", metavar="KEY=VALUE",
                                                 help="Loss constructor argument, JSON value; repeatable "
                                                      "(--loss-opt k=5 --loss-opt temperature=4)."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Target name or TOML path whose numeric "
                                                                      "format --qat trains in."),
    qat: bool = typer.Option(False, "--qat", help="Distill the last epochs quantization-aware (needs --target)."),
    qat_epochs: Optional[int] = typer.Option(None, min=1, help="QAT epochs within --epochs (default: a third)."),
    qat_teacher: Optional[str] = typer.Option(None, "--qat-teacher", help="Who teaches the --qat epochs: self "
                                              "(the frozen float student), teacher or both (default: self)."),
    epochs: int = typer.Option(10, min=1, help="Distillation epochs in all."),
    batch_size: int = typer.Option(128, min=1), lr: float = typer.Option(3e-3, min=0.0),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Random shifts of up to 2 pixels."),
    val_fraction: float = typer.Option(0.2, min=0.01, max=0.9, help="Held-out share when the dataset has "
                                                                    "no test split."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, help="Seed for the split, initialisation and data order."),
    out: Path = typer.Option(Path("build/distill"), "--out", "-o", help="Output folder."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT's per-epoch checkpoint."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    device: str = typer.Option("cpu", "--device", help="Where training runs: cpu (bit-reproducible), cuda, cuda:N "
                                                       "or auto (CUDA when present)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Distill a teacher into a registry student on a dataset; optionally quantization-aware.

    Writes OUT/student.pt (state_dict), OUT/student.json (architecture: rebuild it with
    edgekd.models.create_student, then load_state_dict(torch.load(..., weights_only=True))),
    OUT/preprocess.json, OUT/distill.json (loss and per-epoch history), OUT/summary.json (teacher
    and student val top-1, last loss terms) and the per-epoch checkpoint that --resume reads.

    A teacher file is never unpickled: it is a state_dict, torch.save(model.state_dict(),
    "t.pt"), plus "t.json" naming a registry architecture, e.g. {"name": "resnet", "widths":
    [32, 64, 128]} or {"name": "TeacherCNN", "width": 32}; OUT/student.pt + OUT/student.json
    serve as a teacher as they are. Other architectures: use the Python API, edgekd.distill.

    Exit 0 when done, 2 for bad input (then nothing is written), 1 when training fails.
    """
    # torch-bearing: imported when the command runs (see edgekd.cli.common)
    from edgekd.cli import distill_inputs as inputs
    from edgekd.cli.distill_report import distill_summary, distill_table, write_distill_outputs
    from edgekd.distill.api import distill as run_distill
    from edgekd.distill.device import check_device, resolve_device

    setup_logging(verbose)
    started = time.perf_counter()
    try:  # every input is checked before anything is trained or written
        check_device(device, "--device")
        loss_fn = inputs.make_loss(loss, loss_opt or [])
        student_kw = inputs.student_kwargs(student, student_opt or [])
        fmt = inputs.qat_format(target, qat)
        inputs.check_out(out, resume)
        data = inputs.distill_data(dataset, data_dir, val_fraction, seed)
        student_model = inputs.build_student(student, student_kw, data, seed)  # before a default teacher is trained
        teacher_model, teacher_info = inputs.distill_teacher(teacher, teacher_arch, data, loss_fn, seed, progress)
        model = run_distill(teacher_model, student_model, data.train, data.val, loss=loss_fn, target=fmt, qat=qat,
                            epochs=epochs, qat_epochs=qat_epochs, batch_size=batch_size, lr=lr, seed=seed,
                            augment=augment, out_dir=out, resume=resume, progress=progress,
                            qat_teacher=qat_teacher, device=device)
    except (ConfigError, DataError, CheckpointError) as exc:
        print_error_one_line(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_GATE_FAILED) from None
    summary = distill_summary(model, teacher_model, teacher_info, data, loss, loss_fn, out, seed,
                              str(resolve_device(device)))
    summary.update(epochs=epochs, seconds=round(time.perf_counter() - started, 2))
    write_distill_outputs(out, data, summary)
    Console().print(distill_table(summary))
    console.print(f"student: {out / 'student.pt'} + {out / 'student.json'}  summary: {out / 'summary.json'}")
