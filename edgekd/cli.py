"""The ``edgekd`` command: a thin layer over the Python API."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgekd.errors import ConfigError, DataError, EdgeKDError

app = typer.Typer(help="edgekd: distill a small student per device, compile it for its runtime, "
                       "and prove its accuracy against the teacher.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)
EXIT_GATE_FAILED, EXIT_BAD_INPUT = 1, 2
SEED_MAX = 2**32 - 1  # numpy's seeding bound
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def print_error(exc: BaseException) -> None:
    """One error line on stderr; escaped, so "pip install 'edgekd[openvino]'" keeps its brackets."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)  # one line, however long


def _setup_logging(verbose: bool) -> None:
    from edgekd.logs import terminal_only

    terminal_only(console, verbose)  # other libraries' lines only with --verbose


@app.command()
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
    student: Optional[str] = typer.Option(None, help="Student registry name (default: a small ResNet)."),
    epochs: int = typer.Option(30, min=1, help="Distillation epochs."),
    seed: int = typer.Option(0, min=0, max=SEED_MAX, help="Seed for splits, initialisation and data order."),
    calib_size: Optional[int] = typer.Option(None, help="Calibration samples (default: the target's recipe)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted distillation."),
    search: bool = typer.Option(True, "--search/--no-search", help="Without --student, search one per numeric "
                                                                    "format (DisWOT); --no-search: the default."),
    qat: bool = typer.Option(False, "--qat", help="Distill the last epochs quantization-aware in the format."),
    qat_teacher: Optional[str] = typer.Option(None, "--qat-teacher", help="Who teaches the --qat epochs: self "
                                              "(the frozen float student), teacher or both (default: self)."),
    ship: str = typer.Option("auto", "--ship", help="Which artifact each target ships: auto (the student only "
                                                    "when it is faster than the teacher compiled for the same "
                                                    "runtime), student or teacher."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Distill, quantize, compile and validate a student for each target, on the built-in data or your
    image folder (--data-dir).

    Targets sharing a numeric format share one distillation. Writes OUT/<target>/, OUT/manifest.json
    and OUT/report.html. Exit 0 only if every target was built and every target validated here
    passed its gate; a target built but not runnable here is listed as "not run here" and does not
    fail the build (it is never counted as passed); 1 otherwise; 2 for bad input.
    """
    import shlex
    import sys

    from edgekd.capability import short_reason
    from edgekd.logs import route_logs
    from edgekd.matrix import build_all, resolve_targets
    from edgekd.report.console import print_summary

    _setup_logging(verbose)
    if all_targets and target:
        console.print("[red]error:[/red] pass either --all or --target, not both")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:  # all target files and data options are checked before any work
        targets = resolve_targets(None if all_targets else (target or ["x86-cpu-onnxruntime"]))
        if ship not in ("auto", "student", "teacher"):
            raise ConfigError(f"--ship must be auto, student or teacher, got {ship!r}")
        _check_data_flags(dataset, data_dir, val_dir, image_size, channels)
    except (ConfigError, DataError) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    command = "edgekd " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    fresh, log_file = not out.exists(), out / "build.log"
    try:
        with route_logs(console, verbose, log_file):  # other libraries' lines: to OUT/build.log
            matrix = build_all(targets=targets, out_dir=out, dataset=dataset, student=student, epochs=epochs,
                               seed=seed, qat_teacher=qat_teacher, calib_size=calib_size, resume=resume,
                               search=search, qat=qat, command=command, ship=ship,
                               data_dir=data_dir, val_dir=val_dir, image_size=image_size, channels=channels,
                               val_fraction=val_fraction)
    except (ConfigError, DataError) as exc:
        _drop_log(log_file, fresh)  # bad input writes nothing
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_GATE_FAILED) from None
    except KeyboardInterrupt as exc:  # Ctrl-C: say where, and how to go on
        from edgekd.interrupt import interrupted_at

        console.print(f"[yellow]{interrupted_at(exc).message()}[/yellow]", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print_summary(matrix)
    for r in matrix.results:
        if r.status != "passed":
            colour = "yellow" if r.status == "not run here" else "red"
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
    from edgekd.data.builtin import folder_options

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


@app.command()
def targets(details: bool = typer.Option(False, "--details", help="Also print each reason in full."),
            verbose: bool = typer.Option(False, "--verbose", "-v", help="Show other libraries' warnings too.")
            ) -> None:
    """List the build targets, each with what can be built and validated on this machine."""
    from edgekd.logs import route_logs

    with route_logs(console, verbose):  # importing the backends makes other libraries warn
        _list_targets(details)


def _list_targets(details: bool) -> None:
    from edgekd.capability import short_reason
    from edgekd.targets import list_targets

    try:
        found = list_targets()
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    from edgekd.matrix import capability

    for t in found:
        budget = f"{t.latency.budget_ms} ms" if t.latency.budget_ms else "no budget"
        typer.echo(f"{t.name:30s} {t.backend:14s} w{t.format.weights}/a{t.format.activations:5s} {budget:>10s}  "
                   f"{t.description}")
        cap = capability(t)
        run = "validate here: " + ("yes, latency measured" if cap.latency_here else f"accuracy only; latency "
                                   f"{short_reason(cap.latency_reason)}" if cap.run else
                                   f"no ({short_reason(cap.run_reason)})")
        if cap.build and not cap.run and t.format.is_quantized and _has_reference(t.backend):
            run += "; reference check here (labelled, never a pass)"
        typer.echo(f"    build here: {'yes' if cap.build else 'no (' + short_reason(cap.build_reason) + ')'}; {run}")
        for label, full in (("build", cap.build_reason), ("validate", cap.run_reason), ("latency", cap.latency_reason)):
            if details and full:
                typer.echo(f"    {label}, in full: {full}")


def _has_reference(backend: str) -> bool:
    """Whether the backend can run its artifact's quantized graph in a reference runtime here."""
    from edgekd.backends.base import get_backend

    try:
        return hasattr(get_backend(backend), "reference")
    except ImportError:
        return False


@app.command()
def profile(
    target: str = typer.Option("x86-cpu-onnxruntime", "--target", "-t", help="Target name or path to its TOML file."),
    fit: bool = typer.Option(False, "--fit", help="Measure sampled networks here and refit the target's profile."),
    artifact: Optional[Path] = typer.Option(None, help="Also time this compiled artifact in its runtime."),
    networks: int = typer.Option(40, min=2, help="Networks sampled per search space when fitting."),
    time_limit: float = typer.Option(540.0, min=1, help="Seconds of measuring when fitting."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Show a target's latency model, refit it on this machine (--fit), or time an artifact in its runtime."""
    from edgekd.hw.command import profile_command

    _setup_logging(verbose)
    try:
        for line in profile_command(target, fit=fit, artifact=artifact, networks=networks, time_limit_s=time_limit):
            typer.echo(line)
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
           verbose: bool = typer.Option(False, "--verbose", "-v", help="Show other libraries' warnings too.")
           ) -> None:
    """Every backend: runtime installed, builds here, runs here, hardware present, and one short reason
    for the first gap (--json: every reason in full)."""
    import json

    from rich.markup import escape

    from edgekd.backends.doctor import doctor as rows_of
    from edgekd.capability import short_reason
    from edgekd.logs import route_logs

    with route_logs(console, verbose):  # importing the backends makes other libraries warn
        rows = rows_of()
    for r in rows:  # the first gap, in the order a user fixes them
        r["why_not"] = short_reason(next((r[f"{k}_reason"] for k in ("installed", "builds", "available", "hardware")
                                          if not r[k] and r[f"{k}_reason"]), ""))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="edgekd doctor")
    for col in ("backend", "installed", "builds here", "runs here", "hardware", "why not"):
        table.add_column(col)
    mark = {True: "[green]yes", False: "[red]no"}
    for r in rows:
        table.add_row(r["backend"], mark[r["installed"]], mark[r["builds"]], mark[r["available"]], mark[r["hardware"]],
                      escape(r["why_not"]))
    Console(width=160).print(table)


@app.command()
def search(
    target: str = typer.Option("x86-cpu-onnxruntime", "--target", "-t", help="Target name or TOML path."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (default: mnist5k)."),
    space: str = typer.Option("resnet", help="Search space: resnet, resnet-compact, mobilenetv2."),
    budget_ms: Optional[float] = typer.Option(None, help="Latency budget (default: the target's)."),
    score: str = typer.Option("diswot", help="Score: diswot, nwot, synflow, snip, gradnorm, flops, params, ..."),
    population: int = typer.Option(16, min=2), iterations: int = typer.Option(48, min=0),
    seed: int = typer.Option(0, min=0, max=SEED_MAX), out: Path = typer.Option(Path("build/search"), "--out", "-o"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Search a student for a target without training candidates (DisWOT by default)."""
    from edgekd.search.build import search_builtin

    _setup_logging(verbose)
    try:
        res = search_builtin(dataset, target, seed=seed, space=space, budget_ms=budget_ms, score=score,
                             population=population, iterations=iterations, out_dir=out, threads=1)
    except (ConfigError, DataError) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    lat = "—" if res.predicted_latency_ms is None else f"{res.predicted_latency_ms:.3f} ms"
    typer.echo(f"chosen {res.arch}  score {res.score:.5g}  latency {lat} ({res.latency_kind})  "
               f"{len(res.history)} proposals, {res.rejected} rejected, {res.seconds:.1f} s")
    typer.echo(f"log {res.log_path}  plot {res.plot_path}")


@app.command()
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
    import time

    from edgekd.distill.api import distill as run_distill
    from edgekd.distill.command import (_build_student, _check_out, _distill_data, _distill_summary, _distill_table,
                                        _distill_teacher, _make_loss, _qat_format, _student_kwargs,
                                        _write_distill_outputs)
    from edgekd.errors import CheckpointError

    _setup_logging(verbose)
    started = time.perf_counter()
    try:  # every input is checked before anything is trained or written
        loss_fn = _make_loss(loss, loss_opt or [])
        student_kw = _student_kwargs(student, student_opt or [])
        fmt = _qat_format(target, qat)
        _check_out(out, resume)
        data = _distill_data(dataset, data_dir, val_fraction, seed)
        student_model = _build_student(student, student_kw, data, seed)  # before a default teacher is trained
        teacher_model, teacher_info = _distill_teacher(teacher, teacher_arch, data, loss_fn, seed, progress)
        model = run_distill(teacher_model, student_model, data.train, data.val, loss=loss_fn, target=fmt, qat=qat,
                            epochs=epochs, qat_epochs=qat_epochs, batch_size=batch_size, lr=lr, seed=seed,
                            augment=augment, out_dir=out, resume=resume, progress=progress,
                            qat_teacher=qat_teacher)
    except (ConfigError, DataError, CheckpointError) as exc:
        console.print(f"[red]error:[/red] {escape(' '.join(str(exc).split()))}", soft_wrap=True)  # one line
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_GATE_FAILED) from None
    summary = _distill_summary(model, teacher_model, teacher_info, data, loss, loss_fn, out, seed)
    summary.update(epochs=epochs, seconds=round(time.perf_counter() - started, 2))
    _write_distill_outputs(out, data, summary)
    Console().print(_distill_table(summary))
    console.print(f"student: {out / 'student.pt'} + {out / 'student.json'}  summary: {out / 'summary.json'}")


@app.command("compile")
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
    from edgekd.compile_command import run_compile

    _setup_logging(verbose)
    try:
        artifact = run_compile(model, target, out, arch=arch, dataset=dataset, data_dir=data_dir, val_dir=val_dir,
                               image_size=image_size, channels=channels, val_fraction=val_fraction, seed=seed,
                               calib_size=calib_size, validate_samples=validate_samples)
    except (ConfigError, DataError) as exc:
        console.print(f"[red]error:[/red] {escape(' '.join(str(exc).split()))}", soft_wrap=True)
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
    if v.status == "failed":
        raise typer.Exit(EXIT_GATE_FAILED)


def main() -> None:  # console-script entry point
    """Run the app: any EdgeKDError or full disk is one line and exit 2; the traceback only with --debug."""
    import errno
    import sys

    debug = "--debug" in sys.argv[1:]
    if debug:  # a global flag: accepted anywhere on the line
        sys.argv.remove("--debug")
    try:
        app()
    except EdgeKDError as exc:
        if debug:
            raise
        print_error(exc)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except OSError as exc:  # a path the user gave: a file where a folder goes, no permission, a full disk
        if debug or exc.filename is None and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            print_error(f"no space left on {exc.filename or 'the output device'}")
        else:
            print_error(f"{exc.filename}: {exc.strerror or type(exc).__name__}")
        raise SystemExit(EXIT_BAD_INPUT) from None


if __name__ == "__main__":
    main()
