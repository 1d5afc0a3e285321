"""The ``edgekd`` command: a thin layer over the Python API, one module per command group.

    common          the stderr console, exit codes, one-line errors, logging set-up
    build           edgekd build
    targets         edgekd targets, edgekd doctor
    profile         edgekd profile, edgekd search (profile_lines: the lines profile prints)
    distill         edgekd distill (options: KEY=VALUE parsing; distill_inputs: its inputs, checked
                    before anything is trained; distill_report: what it writes and prints)
    compile         edgekd compile

The command modules define plain functions; ``app`` below registers them, in the order ``--help``
lists them. Nothing else in edgekd imports this package. Exit codes: 0 done, 1 a gate failed or
a step errored, 2 bad input (one line, no traceback unless ``--debug``), 130 interrupted.
"""

from __future__ import annotations

import errno
import sys

import typer

from edgekd.cli import build, compile, distill, profile, targets
from edgekd.cli.common import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_INTERRUPTED, SEED_MAX, console, print_error
from edgekd.errors import EdgeKDError

__all__ = ["EXIT_BAD_INPUT", "EXIT_GATE_FAILED", "EXIT_INTERRUPTED", "SEED_MAX", "app", "console", "main",
           "print_error"]

app = typer.Typer(help="edgekd: distill a small student per device, compile it for its runtime, "
                       "and prove its accuracy against the teacher.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
# every command, in the order --help lists them
app.command()(build.build)
app.command()(targets.targets)
app.command()(profile.profile)
app.command()(targets.doctor)
app.command()(profile.search)
app.command()(distill.distill)
app.command("compile")(compile.compile_model)


def main() -> None:  # console-script entry point
    """Run the app: any EdgeKDError or full disk is one line and exit 2; the traceback only with --debug."""
    debug = "--debug" in sys.argv[1:]
    if debug:  # a global flag: accepted anywhere on the line
        sys.argv.remove("--debug")
    try:
        app()  # looked up at call time, so a test can put its own app in its place
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
