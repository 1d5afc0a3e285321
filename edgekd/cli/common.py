"""What every ``edgekd`` command shares: the stderr console, exit codes, error lines.

Command modules import only light modules (typer, rich, edgekd.errors, edgekd.logs) at their top;
what a command runs imports torch, so it is imported when the command runs: ``edgekd --help``
then starts without loading torch.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from edgekd.logs import terminal_only

console = Console(stderr=True)
EXIT_GATE_FAILED, EXIT_BAD_INPUT = 1, 2
SEED_MAX = 2**32 - 1  # numpy's seeding bound
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def print_error(exc: BaseException | str) -> None:
    """One error line on stderr; escaped, so "pip install 'edgekd[openvino]'" keeps its brackets."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)  # one line, however long


def print_error_one_line(exc: BaseException) -> None:
    """:func:`print_error` with the message's own line breaks folded into spaces."""
    console.print(f"[red]error:[/red] {escape(' '.join(str(exc).split()))}", soft_wrap=True)


def setup_logging(verbose: bool) -> None:
    terminal_only(console, verbose)  # other libraries' lines only with --verbose
