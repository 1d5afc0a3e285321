"""Where the ``edgekd`` command's log lines go.

edgekd's own lines go to the terminal (and the log file). Other libraries' lines (their ``logging`` records, Python
warnings, and what their C/C++ cores write straight to file descriptor 2: ONNX Runtime, OpenVINO,
TensorFlow Lite) go to a log file in the output folder, or nowhere for a command that has none.
``verbose`` shows everything on the terminal, as the libraries print it. Used by the CLI only: the
library itself just logs through ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

OURS = "edgekd"
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def is_ours(name: str) -> bool:
    return name == OURS or name.startswith(OURS + ".")


class _Ours(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return is_ours(record.name)


@contextmanager
def route_logs(console, verbose: bool = False, log_file: str | Path | None = None):
    """Send edgekd's log lines to ``console`` (a rich Console) and the rest to ``log_file``.

    Within the block, loggers that other libraries gave their own terminal handlers (torch's)
    pass their records up to the root instead, and file descriptor 2 points at ``log_file`` (or
    the null device); ``sys.stderr`` sends edgekd's writes (its progress bars, its console) to the
    terminal and other libraries' (Core ML's conversion bars) to the log. Everything is put back
    on exit.
    """
    from rich.logging import RichHandler  # light module (every command imports it): loaded on first use

    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    terminal = RichHandler(console=console, show_path=False)
    handlers: list[logging.Handler] = [terminal]
    if not verbose:
        terminal.addFilter(_Ours())
        if log_file is not None:
            to_file = logging.FileHandler(log_file, encoding="utf-8")
            to_file.setFormatter(logging.Formatter(_FILE_FORMAT))
            handlers.append(to_file)
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    taken = {} if verbose else _take_over_loggers()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=handlers,
                        force=True)
    logging.captureWarnings(not verbose)
    redirected = None if verbose else _redirect_fd2(log_file)
    try:
        yield
    finally:
        if redirected is not None:
            _restore_fd2(*redirected)
        logging.captureWarnings(False)
        for h in root.handlers:
            if h not in saved_root[0]:
                h.close()
        root.handlers[:], root.level = saved_root
        for logger, (own, propagate) in taken.items():
            logger.handlers[:], logger.propagate = own, propagate


def terminal_only(console, verbose: bool = False) -> None:
    """For the rest of the process: edgekd's lines on ``console``, other libraries' nowhere (all of
    them with ``verbose``). For commands without an output folder to keep a log in."""
    from rich.logging import RichHandler  # light module (every command imports it): loaded on first use

    terminal = RichHandler(console=console, show_path=False)
    if not verbose:
        terminal.addFilter(_Ours())
        _take_over_loggers()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=[terminal],
                        force=True)
    logging.captureWarnings(not verbose)


def _take_over_loggers() -> dict:
    """Loggers with their own terminal handlers (torch sets one on "torch") pass records to the root."""
    import torch  # noqa: F401 - torch attaches its handlers on import: import it before taking them over

    taken = {}
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger) or is_ours(logger.name):
            continue
        terminal = [h for h in logger.handlers if type(h) is logging.StreamHandler or
                    type(h).__name__ in ("RichHandler", "ABSLHandler", "PythonHandler")]
        if terminal:
            taken[logger] = (logger.handlers[:], logger.propagate)
            logger.handlers[:] = [h for h in logger.handlers if h not in terminal]
            logger.propagate = True
    return taken


def _redirect_fd2(log_file):
    """Point fd 2 at the log (C/C++ libraries write there); ``sys.stderr`` routes by writer."""
    try:
        if sys.stderr.fileno() != 2:
            return None
    except (AttributeError, OSError, ValueError):  # an in-process test runner's stream: nothing to redirect
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    sink = os.open(log_file if log_file is not None else os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.dup2(sink, 2)
    os.close(sink)
    old = sys.stderr
    encoding = old.encoding or "utf-8"
    terminal = os.fdopen(os.dup(saved), "w", buffering=1, encoding=encoding, errors="backslashreplace")
    sys.stderr = _ByWriter(terminal, os.fdopen(os.dup(2), "w", buffering=1, encoding=encoding,
                                               errors="backslashreplace"))
    return saved, old


def _restore_fd2(saved: int, old) -> None:
    sys.stderr.flush()
    sys.stderr.close()
    os.dup2(saved, 2)
    os.close(saved)
    sys.stderr = old


# Modules that only relay a write: the module that called into them is the writer.
_RELAYS = ("tqdm", "rich", "logging", "io", "codecs", "contextlib", "warnings", "traceback", "edgekd.logs")
_TERMINAL = ("edgekd", "typer", "click", "__main__", "runpy")


class _ByWriter:
    """``sys.stderr`` while routed: edgekd's (and the command line's) writes reach the terminal, other
    libraries' (their progress bars, prints) the log. The writer is the first caller outside the
    relaying modules (a tqdm bar belongs to whoever advances it)."""

    def __init__(self, terminal, log):
        self._terminal, self._log = terminal, log

    def _stream(self):
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_globals.get("__name__", "")
            if not any(name == r or name.startswith(r + ".") for r in _RELAYS):
                ours = any(name == t or name.startswith(t + ".") for t in _TERMINAL)
                return self._terminal if ours else self._log
            frame = frame.f_back
        return self._terminal

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        self._terminal.flush()
        self._log.flush()

    def close(self) -> None:
        self._terminal.close()
        self._log.close()

    def __getattr__(self, name):  # isatty, fileno, encoding...: the terminal's
        return getattr(self._terminal, name)
