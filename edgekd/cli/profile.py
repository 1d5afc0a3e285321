"""``edgekd profile`` and ``edgekd search``: a target's latency model, and a student searched for it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgekd.cli.common import EXIT_BAD_INPUT, SEED_MAX, print_error, setup_logging
from edgekd.errors import ConfigError, DataError, EdgeKDError


def profile(
    target: str = typer.Option("x86-cpu-onnxruntime", "--target", "-t", help="Target name or path to its TOML file."),
    fit: bool = typer.Option(False, "--fit", help="Measure sampled networks here and refit the target's profile."),
    artifact: Optional[Path] = typer.Option(None, help="Also time this compiled artifact in its runtime."),
    networks: int = typer.Option(40, min=2, help="Networks sampled per search space when fitting."),
    time_limit: float = typer.Option(540.0, min=1, help="Seconds of measuring when fitting."),
    drift: bool = typer.Option(False, "--drift", help="Time anchor networks here (5-15 s per precision) and say how "
                               "far this machine's speed is from the profile's."),
    input_shape: str = typer.Option("1x28x28", help="CxHxW the drift check times its anchors at."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Show a target's latency model, refit it on this machine (--fit), or time an artifact in its runtime."""
    from edgekd.cli.profile_lines import profile_lines  # torch-bearing: see edgekd.cli.common

    setup_logging(verbose)
    try:
        for line in profile_lines(target, fit=fit, artifact=artifact, networks=networks, time_limit_s=time_limit,
                                  drift_shape=input_shape if drift else None):
            typer.echo(line)
    except EdgeKDError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def search(
    target: str = typer.Option("x86-cpu-onnxruntime", "--target", "-t", help="Target name or TOML path."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (default: mnist5k)."),
    space: str = typer.Option("resnet", help="Search space: resnet, resnet-compact, mobilenetv2."),
    budget_ms: Optional[float] = typer.Option(None, help="Latency budget (default: the target's)."),
    score: Optional[str] = typer.Option(None, help="Score: flops (the default), params, diswot, nwot, synflow, snip, "
                                                   "gradnorm, ..."),
    population: int = typer.Option(16, min=2), iterations: int = typer.Option(48, min=0),
    seed: int = typer.Option(0, min=0, max=SEED_MAX), out: Path = typer.Option(Path("build/search"), "--out", "-o"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Search a student for a target without training candidates (the default score: see the README)."""
    from edgekd.stages.student import search_builtin  # torch-bearing: see edgekd.cli.common

    setup_logging(verbose)
    try:
        chosen = {"score": score} if score else {}  # none named: edgekd.search's default
        res = search_builtin(dataset, target, seed=seed, space=space, budget_ms=budget_ms, population=population,
                             iterations=iterations, out_dir=out, threads=1, **chosen)
    except (ConfigError, DataError) as exc:
        print_error(exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    lat = "—" if res.predicted_latency_ms is None else f"{res.predicted_latency_ms:.3f} ms"
    typer.echo(f"chosen {res.arch}  score {res.score:.5g}  latency {lat} ({res.latency_kind})  "
               f"{len(res.history)} proposals, {res.rejected} rejected, {res.seconds:.1f} s")
    typer.echo(f"log {res.log_path}  plot {res.plot_path}")
