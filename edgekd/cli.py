"""The ``edgekd`` command: a thin layer over the Python API."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from edgekd.errors import ConfigError, DataError, EdgeKDError

app = typer.Typer(help="edgekd: distill a small student per device, compile it for its runtime, "
                       "and prove its accuracy against the teacher.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)
EXIT_GATE_FAILED, EXIT_BAD_INPUT = 1, 2


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)


@app.command()
def build(
    target: list[str] = typer.Option(["x86-cpu-onnxruntime"], "--target", "-t",
                                     help="Target name or path to its TOML file; repeat for several."),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="Output folder; artifacts go to OUT/<target>/."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (default: mnist5k)."),
    student: Optional[str] = typer.Option(None, help="Student registry name (default: a small ResNet)."),
    epochs: int = typer.Option(30, min=1, help="Distillation epochs."),
    seed: int = typer.Option(0, help="Seed for splits, initialisation and data order."),
    calib_size: Optional[int] = typer.Option(None, help="Calibration samples (default: the target's recipe)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted distillation."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Distill, quantize, compile and validate a student for each target, on the built-in data."""
    import edgekd
    from edgekd.targets import load_target

    _setup_logging(verbose)
    try:
        targets = [load_target(t) for t in target]  # all target files are checked before any work
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    results = []
    for tgt in targets:
        console.rule(f"[bold]{tgt.name}")
        try:
            results.append(edgekd.build(target=tgt, out_dir=out, dataset=dataset, student=student, epochs=epochs,
                                        seed=seed, calib_size=calib_size, resume=resume))
        except (ConfigError, DataError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except EdgeKDError as exc:
            console.print(f"[red]error:[/red] {tgt.name}: {exc}")
            raise typer.Exit(EXIT_GATE_FAILED) from None
    Console().print(summary_table([r.report for r in results]))
    failed = [r for r in results if not r.passed]
    for r in failed:
        for reason in r.report["gate"]["reasons"]:
            console.print(f"[red]gate failed[/red] {r.report['target']['name']}: {reason}")
    raise typer.Exit(EXIT_GATE_FAILED if failed else 0)


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
    """List the build targets, one line each."""
    from edgekd.targets import list_targets

    try:
        found = list_targets()
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for t in found:
        budget = f"{t.latency.budget_ms} ms" if t.latency.budget_ms else "no budget"
        typer.echo(f"{t.name:30s} {t.backend:14s} w{t.format.weights}/a{t.format.activations:5s} {budget:>10s}  "
                   f"{t.description}")


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    main()
