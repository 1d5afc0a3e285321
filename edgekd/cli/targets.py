"""``edgekd targets`` and ``edgekd doctor``: what this machine can build and run, per target and per backend."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgekd.cli.common import EXIT_BAD_INPUT, console, print_error
from edgekd.errors import ConfigError
from edgekd.logs import route_logs


def targets(details: bool = typer.Option(False, "--details", help="Also print each reason in full."),
            verbose: bool = typer.Option(False, "--verbose", "-v", help="Show other libraries' warnings too.")
            ) -> None:
    """List the build targets, each with what can be built and validated on this machine."""
    with route_logs(console, verbose):  # importing the backends makes other libraries warn
        _list_targets(details)


def _list_targets(details: bool) -> None:
    # imported here, inside route_logs: importing the backends makes other libraries warn (and loads torch)
    from edgekd.capability import capability, short_reason
    from edgekd.targets import list_targets

    try:
        found = list_targets()
    except ConfigError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
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
    from edgekd.backends.base import get_backend  # inside route_logs, as above

    try:
        return get_backend(backend).has_reference
    except ImportError:
        return False


def doctor(as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
           verbose: bool = typer.Option(False, "--verbose", "-v", help="Show other libraries' warnings too.")
           ) -> None:
    """Every backend: runtime installed, builds here, runs here, hardware present, and one short reason
    for the first gap (--json: every reason in full)."""
    with route_logs(console, verbose):  # importing the backends makes other libraries warn
        # imported here, inside route_logs, for the same reason
        from edgekd.backends.doctor import doctor as rows_of
        from edgekd.capability import short_reason

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
