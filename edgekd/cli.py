"""The ``edgekd`` command: a thin layer over the Python API."""

from __future__ import annotations

import logging
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


def print_error(exc: BaseException) -> None:
    """One error line on stderr; escaped, so "pip install 'edgekd[openvino]'" keeps its brackets."""
    console.print(f"[red]error:[/red] {escape(str(exc))}")


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)


@app.command()
def build(
    target: Optional[list[str]] = typer.Option(None, "--target", "-t",
                                               help="Target name or path to its TOML file; repeat for several "
                                                    "(default: x86-cpu-onnxruntime)."),
    all_targets: bool = typer.Option(False, "--all", help="Build every target in the targets folders."),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="Output folder; artifacts go to OUT/<target>/."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (default: mnist5k)."),
    student: Optional[str] = typer.Option(None, help="Student registry name (default: a small ResNet)."),
    epochs: int = typer.Option(30, min=1, help="Distillation epochs."),
    seed: int = typer.Option(0, help="Seed for splits, initialisation and data order."),
    calib_size: Optional[int] = typer.Option(None, help="Calibration samples (default: the target's recipe)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted distillation."),
    search: bool = typer.Option(True, "--search/--no-search", help="Without --student, search one per numeric "
                                                                    "format (DisWOT); --no-search: the default."),
    qat: bool = typer.Option(False, "--qat", help="Distill the last epochs quantization-aware in the format."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Distill, quantize, compile and validate a student for each target, on the built-in data.

    Targets sharing a numeric format share one distillation. Writes OUT/<target>/, OUT/manifest.json
    and OUT/report.html. Exit 0 only if every target was built and every target validated here
    passed its gate; a target built but not runnable here is listed as "not run here" and does not
    fail the build (it is never counted as passed); 1 otherwise; 2 for bad input.
    """
    import shlex
    import sys

    from edgekd.matrix import build_all, resolve_targets

    _setup_logging(verbose)
    if all_targets and target:
        console.print("[red]error:[/red] pass either --all or --target, not both")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:  # all target files are checked before any work
        targets = resolve_targets(None if all_targets else (target or ["x86-cpu-onnxruntime"]))
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    command = "edgekd " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        matrix = build_all(targets=targets, out_dir=out, dataset=dataset, student=student, epochs=epochs, seed=seed,
                           calib_size=calib_size, resume=resume, search=search, qat=qat, command=command)
    except (ConfigError, DataError) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_GATE_FAILED) from None
    Console().print(matrix_table(matrix))
    for r in matrix.results:
        if r.status != "passed":
            colour = "yellow" if r.status == "not run here" else "red"
            console.print(f"[{colour}]{r.status}[/{colour}] {r.target}: {escape(str(r.reason))}")
    console.print(f"report: {matrix.html_path}  manifest: {matrix.manifest_path}")
    raise typer.Exit(0 if matrix.ok else EXIT_GATE_FAILED)


def matrix_table(matrix) -> Table:
    """The end-of-build summary: one row per target, latency labelled measured / predicted / none."""
    table = Table(title=f"edgekd build summary ({matrix.seconds:.0f} s)")
    for col in ("target", "backend", "status", "artifact", "student fp32", "teacher", "agree w/ teacher",
                "latency ms", "size KiB"):
        table.add_column(col, justify="left" if col in ("target", "backend", "status") else "right")
    colours = {"passed": "green", "not run here": "yellow", "not built here": "dim"}
    for r in matrix.results:
        rep = r.report or {}
        art = rep.get("artifact", {})
        lat = (rep.get("run") or {}).get("latency") or {}
        pct = lambda x: "—" if x is None else f"{x * 100:.2f}%"  # noqa: E731
        latency = f"{lat['ms']:.3f} ({lat['kind']})" if lat.get("ms") is not None else "—"
        ref = art.get("reference_check") if art.get("accuracy") is None else None  # device absent
        shown = ref or art
        table.add_row(r.target, rep.get("target", {}).get("backend", "—"),
                      f"[{colours.get(r.status, 'red')}]{r.status}", pct(shown.get("accuracy")) +
                      (f" {art['precision']}" if art.get("precision") else "") + (" (reference run)" if ref else ""),
                      pct(rep.get("student", {}).get("accuracy")), pct(rep.get("teacher", {}).get("accuracy")),
                      pct(shown.get("agreement_teacher")), latency,
                      f"{art['size_bytes'] / 1024:.1f}" if art.get("size_bytes") else "—")
    return table


def summary_table(reports: list[dict]) -> Table:
    table = Table(title="edgekd build summary")
    for col in ("target", "teacher top-1", "student fp32", "artifact", "agree w/ teacher", "artifact p50 ms",
                "teacher p50 ms", "size KiB", "gate"):
        table.add_column(col, justify="right" if col != "target" else "left")
    for r in reports:
        a, t, s = r["artifact"], r["teacher"], r["student"]
        lat_a, lat_t = a.get("latency_ms") or {}, t.get("latency_ms") or {}
        table.add_row(r["target"]["name"], f"{t['accuracy'] * 100:.2f}%", f"{s['accuracy'] * 100:.2f}%",
                      f"{a['accuracy'] * 100:.2f}% {a['precision']}", f"{a['agreement_teacher'] * 100:.2f}%",
                      f"{lat_a.get('p50', float('nan')):.3f}", f"{lat_t.get('p50', float('nan')):.3f}",
                      f"{a['size_bytes'] / 1024:.1f}", "[green]pass" if r["gate"]["passed"] else "[red]FAIL")
    return table


@app.command()
def targets() -> None:
    """List the build targets, each with what can be built and validated on this machine."""
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
                                   f"{cap.latency_reason}" if cap.run else f"no ({cap.run_reason})")
        if cap.build and not cap.run and _has_reference(t.backend):
            run += "; reference check here: the same int8 graph in a reference runtime (labelled, never a pass)"
        typer.echo(f"    build here: {'yes' if cap.build else 'no (' + cap.build_reason + ')'}; {run}")


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
def doctor(as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON.")) -> None:
    """Every backend: installed, available (runs here), hardware present, and the reason for each gap."""
    import json

    from rich.markup import escape

    from edgekd.backends.doctor import doctor as rows_of

    rows = rows_of()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="edgekd doctor")
    for col in ("backend", "installed", "available", "hardware", "why not"):
        table.add_column(col)
    mark = {True: "[green]yes", False: "[red]no"}
    for r in rows:
        why = "; ".join(dict.fromkeys(x for x in (r["installed_reason"], r["available_reason"],
                                                  "" if r["hardware"] else r["hardware_reason"]) if x))
        table.add_row(r["backend"], mark[r["installed"]], mark[r["available"]], mark[r["hardware"]], escape(why))
    Console(width=160).print(table)


@app.command()
def search(
    target: str = typer.Option("x86-cpu-onnxruntime", "--target", "-t", help="Target name or TOML path."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (default: mnist5k)."),
    space: str = typer.Option("resnet", help="Search space: resnet, resnet-compact, mobilenetv2."),
    budget_ms: Optional[float] = typer.Option(None, help="Latency budget (default: the target's)."),
    score: str = typer.Option("diswot", help="Score: diswot, nwot, synflow, snip, gradnorm, flops, params, ..."),
    population: int = typer.Option(16, min=2), iterations: int = typer.Option(48, min=0),
    seed: int = typer.Option(0), out: Path = typer.Option(Path("build/search"), "--out", "-o"),
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


_ARCH_KEYS = ("schema", "name", "input_shape", "num_classes", "qat_format")  # arch JSON keys that are not kwargs


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
    epochs: int = typer.Option(10, min=1, help="Distillation epochs in all."),
    batch_size: int = typer.Option(128, min=1), lr: float = typer.Option(3e-3, min=0.0),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Random shifts of up to 2 pixels."),
    val_fraction: float = typer.Option(0.2, min=0.01, max=0.9, help="Held-out share when the dataset has "
                                                                    "no test split."),
    seed: int = typer.Option(0, help="Seed for the split, initialisation and data order."),
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
                            augment=augment, out_dir=out, resume=resume, progress=progress)
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


def _opts(flag: str, pairs: list[str], accepted: dict, owner: str) -> dict:
    """``KEY=VALUE`` strings → kwargs; VALUE is JSON (else a string), coerced to the default's type."""
    import json

    kwargs = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE")
        if key not in accepted:
            raise ConfigError(f"{flag} {key}: {owner} takes no option {key!r}; valid: {', '.join(accepted)}")
        default = accepted[key]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if default is None:  # no default to say what a bare word means: JSON only
                raise ConfigError(f"{flag} {key}={text}: not JSON (quote strings: {key}='\"name\"')") from None
            value = text
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # temperature=4 and temperature=4.0 are the same run (and checkpoint)
        if default is not None and not isinstance(default, (list, tuple)) and type(value) is not type(default):
            kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(default), "a string")
            raise ConfigError(f"{flag} {key}={text}: {owner} expects {kind} (default {default!r})")
        kwargs[key] = value
    return kwargs


def _parameters(fn, skip=()) -> dict:
    import inspect

    return {n: p.default if p.default is not inspect.Parameter.empty else None
            for n, p in inspect.signature(fn).parameters.items()
            if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _make_loss(name: str, pairs: list[str]):
    from edgekd.distill.losses import create_loss

    try:
        cls = type(create_loss(name))
    except ConfigError as exc:
        raise ConfigError(f"--loss: {exc}") from None
    kwargs = _opts("--loss-opt", pairs, _parameters(cls), f"loss {name!r}")
    try:
        return create_loss(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--loss-opt: loss {name!r} rejected {kwargs}: {exc}") from None


def _student_kwargs(name: str, pairs: list[str]) -> dict:
    from edgekd.models import student_info

    try:
        info = student_info(name)
    except ConfigError as exc:
        raise ConfigError(f"--student: {exc}") from None
    return _opts("--student-opt", pairs, _parameters(info.factory, ("input_shape", "num_classes")),
                 f"student {name!r}")


def _build_student(name: str, kwargs: dict, data, seed: int):
    import torch

    from edgekd.models import create_student

    torch.manual_seed(seed)  # the initial weights, so a rerun with the same --seed is the same run
    try:
        return create_student(name, data.train.input_shape, data.num_classes, **kwargs)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"--student-opt: {exc}") from None


def _qat_format(target: Optional[str], qat: bool):
    from edgekd.targets import load_target

    if qat and not target:
        raise ConfigError("--qat needs --target (a target name or TOML path; `edgekd targets` lists them)")
    if target and not qat:
        raise ConfigError("--target only sets the format --qat trains in; add --qat, or drop --target")
    if not qat:
        return None
    try:
        fmt = load_target(target).format
    except ConfigError as exc:
        raise ConfigError(f"--target: {exc}") from None
    if not fmt.is_quantized and fmt.weights != "fp16":  # what prepare_qat accepts, checked before training
        raise ConfigError(f"--target {target}: format {fmt.key} is fp32, nothing to train quantization-aware; "
                          "drop --qat")
    return fmt


def _check_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    # checkpoint names as edgekd.distill.api writes them
    if resume and not any((out / n).exists() for n in ("distill.ckpt", "distill.qat.ckpt")):
        raise ConfigError(f"--resume: no checkpoint in {out} (distill.ckpt); run once without --resume")


def _distill_summary(model, teacher, teacher_info: dict, data, loss: str, loss_fn, out: Path, seed: int) -> dict:
    import json

    from edgekd.distill.trainer import evaluate

    last = model.edgekd_history[-1]
    written = json.loads((out / "distill.json").read_text())  # edgekd.distill's own record of the run
    return {"dataset": data.name, "train_size": len(data.train), "val_size": len(data.val), "seed": seed,
            "teacher": {**teacher_info, "val_accuracy": evaluate(teacher, data.val) if teacher is not None else None},
            "student": {"arch": _arch_card(model, data), "val_accuracy": evaluate(model, data.val)},
            "loss": {"name": loss, "config": loss_fn.config(),
                     "terms": {k: v for k, v in last.items() if k not in ("epoch", "phase", "val_accuracy")}},
            "qat": getattr(model, "edgekd_qat", None), "resumed_from_epoch": int(written["resumed_from_epoch"])}


def _distill_data(dataset: str, data_dir: Optional[Path], val_fraction: float, seed: int):
    from edgekd.data import load_dataset, split
    from edgekd.pipeline import _Data

    if dataset == "folder" and data_dir is None:
        raise ConfigError("--data-dir: --dataset folder needs the image folder (DATA_DIR/<class>/<image>)")
    try:
        bundle = load_dataset(dataset, **({"root": data_dir} if data_dir is not None else {}))
    except TypeError:
        raise ConfigError(f"--data-dir: dataset {dataset!r} reads no folder; drop --data-dir") from None
    except DataError as exc:
        raise DataError(f"{'--data-dir' if data_dir is not None else '--dataset'}: {exc}") from None
    if bundle.test is not None:
        train, val = bundle.train, bundle.test
    else:
        val, train = split(bundle.train, max(1, int(len(bundle.train) * val_fraction)), seed)
    return _Data(bundle.name, train, val, bundle.spec, True, True)


def _distill_teacher(path: Optional[Path], arch_path: Optional[Path], data, loss_fn, seed: int, progress: bool):
    from edgekd.pipeline import _prepare_teacher

    if path is None and arch_path is not None:
        raise ConfigError("--teacher-arch needs --teacher (the weights)")
    if path is None and not loss_fn.needs_teacher:
        return None, {"arch": None, "source": "none (the loss needs no teacher)"}
    model = None
    if path is not None:
        model = _load_weights_and_arch(path, arch_path or path.with_suffix(".json"), data, "--teacher")
    try:
        teacher, info = _prepare_teacher(model, data, seed, progress)
    except DataError as exc:
        raise DataError(f"--teacher: {exc}") from None
    if path is not None:
        info.update(arch=_arch_card(teacher, data), weights=str(path))
    return teacher, info


def _load_weights_and_arch(weights: Path, arch_path: Path, data, flag: str):
    """A state_dict (``weights_only=True``) into a model built from its arch JSON: no object is unpickled."""
    import json

    import torch

    for p in (weights, arch_path):
        if not p.is_file():
            raise ConfigError(f"{flag}: {p} not found (a teacher is a state_dict file plus its architecture JSON)")
    try:
        arch = json.loads(arch_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{flag}: {arch_path}: not JSON ({exc})") from None
    model = _model_from_arch(arch, data, f"{flag} {arch_path}")
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


def _model_from_arch(arch, data, where: str):
    import torch

    from edgekd.models import TeacherCNN, create_student, list_students
    from edgekd.targets import NumericFormat

    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise ConfigError(f"{where}: expected {{\"name\": <architecture>, ...arguments}}")
    shape, classes = data.train.input_shape, data.num_classes
    for key, have in (("input_shape", list(shape)), ("num_classes", classes)):
        if key in arch and arch[key] != have:
            raise DataError(f"{where}: {key} {arch[key]} but the data has {have}")
    kwargs = {k: v for k, v in arch.items() if k not in _ARCH_KEYS}
    try:
        if arch["name"] == "TeacherCNN":
            model = TeacherCNN(shape, classes, **kwargs)
            model.edgekd_arch = {"name": "TeacherCNN", **kwargs}
        elif arch["name"] in list_students():
            model = create_student(arch["name"], shape, classes, **kwargs)
        else:
            raise ConfigError(f"unknown architecture {arch['name']!r}; valid: "
                              f"{', '.join(['TeacherCNN', *list_students()])}")
        if arch.get("qat_format"):  # scales, zero points and BN folding come back with the weights
            from edgekd.quant import prepare_qat

            fmt = NumericFormat.model_validate(arch["qat_format"])
            model = prepare_qat(model, fmt, torch.zeros(1, *shape))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return model


def _arch_card(model, data) -> dict:
    """What student.json holds: rebuild with the registry, then load the state_dict."""
    arch = {k: v for k, v in (getattr(model, "edgekd_arch", None) or {"name": type(model).__name__}).items()
            if k != "qat"}
    qat = getattr(model, "edgekd_qat", None)
    return {"schema": "edgekd.arch/1", **arch, "input_shape": list(data.train.input_shape),
            "num_classes": data.num_classes, "qat_format": qat["format"] if qat else None}


def _write_distill_outputs(out: Path, data, summary: dict) -> None:
    from edgekd._io import write_json

    write_json(out / "student.json", summary["student"]["arch"])
    data.spec.save(out / "preprocess.json")
    write_json(out / "summary.json", summary)


def _distill_table(s: dict) -> Table:
    pct = lambda x: "—" if x is None else f"{x * 100:.2f}%"  # noqa: E731
    arch = s["student"]["arch"]
    table = Table(title=f"edgekd distill ({s['dataset']}, {s['epochs']} epochs, {s['seconds']:.0f} s)")
    table.add_column("")
    table.add_column("value")
    table.add_row("teacher val top-1", f"{pct(s['teacher']['val_accuracy'])} ({escape(s['teacher']['source'])})")
    table.add_row("student val top-1", pct(s["student"]["val_accuracy"]) +
                  (f" (QAT {s['qat']['format']['weights']}/{s['qat']['format']['activations']})" if s["qat"] else ""))
    table.add_row("student", escape(f"{arch['name']} " + " ".join(
        f"{k}={v}" for k, v in arch.items() if k not in _ARCH_KEYS)))
    table.add_row("loss terms (last epoch)", f"{s['loss']['name']}: " + ", ".join(
        f"{k} {v:.4f}" for k, v in s["loss"]["terms"].items()))
    if s["resumed_from_epoch"]:
        table.add_row("resumed from epoch", str(s["resumed_from_epoch"]))
    return table


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
