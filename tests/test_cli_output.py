import pytest

from edgekd.cli import print_error
from edgekd.errors import MissingExtraError


def test_cli_error_keeps_the_extra_name_in_brackets(capsys):
    print_error(MissingExtraError("openvino", "openvino"))
    assert "pip install 'edgekd[openvino]'" in capsys.readouterr().err


def _run(*args, timeout=300):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("command", ["targets", "doctor"])
def test_cli_listing_commands_print_no_third_party_lines_on_stderr(command):
    # edgekd writes these listings to stdout; importing every backend makes other libraries warn
    # (coremltools, torchao, scikit-learn), and none of that may reach the terminal
    proc = _run("-m", "edgekd.cli", command)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()
    assert proc.stderr.splitlines() == []


ROUTE_SCRIPT = r"""
import logging, os, sys, warnings
from pathlib import Path
from rich.console import Console
from edgekd.logs import route_logs

log_file = Path(sys.argv[1]) if sys.argv[1] != "-" else None
with route_logs(Console(stderr=True), verbose=sys.argv[2] == "1", log_file=log_file):
    logging.getLogger("edgekd.pipeline").info("OURS-INFO")
    logging.getLogger("coremltools").warning("THEIRS-LOGGING")
    logging.getLogger("torch.utils._pytree").warning("THEIRS-TORCH")  # torch's own handler
    warnings.warn("THEIRS-WARNING")
    os.write(2, b"THEIRS-FD2\n")  # what a C++ runtime writes
    print("PROGRESS", file=sys.stderr)  # edgekd's console and bars write to sys.stderr: the terminal
    from tqdm import tqdm
    for _ in tqdm(range(2), desc="OURS-BAR", disable=False):
        pass
    theirs = {"__name__": "coremltools.converters", "tqdm": tqdm, "sys": sys}  # a library's own bar and print
    exec("for _ in tqdm(range(2), desc='THEIRS-BAR', disable=False): pass\n"
         "print('THEIRS-PRINT', file=sys.stderr)", theirs)
print("AFTER", file=sys.stderr)
os.write(2, b"AFTER-FD2\n")
"""

THEIRS = ("THEIRS-LOGGING", "THEIRS-TORCH", "THEIRS-WARNING", "THEIRS-FD2", "THEIRS-BAR", "THEIRS-PRINT")


def test_route_logs_sends_other_libraries_only_to_the_log_file(tmp_path):
    log = tmp_path / "out" / "build.log"
    proc = _run("-c", ROUTE_SCRIPT, str(log), "0", timeout=120)
    assert proc.returncode == 0, proc.stderr
    for mark in ("OURS-INFO", "PROGRESS", "OURS-BAR", "AFTER", "AFTER-FD2"):
        assert mark in proc.stderr
    for mark in THEIRS:
        assert mark not in proc.stderr
        assert mark in log.read_text()
    assert "OURS-INFO" in log.read_text()  # the file is the whole story


def test_route_logs_verbose_shows_every_line_on_the_terminal(tmp_path):
    proc = _run("-c", ROUTE_SCRIPT, "-", "1", timeout=120)
    assert proc.returncode == 0, proc.stderr
    for mark in ("OURS-INFO", "PROGRESS", "OURS-BAR", *THEIRS):
        assert mark in proc.stderr


def test_route_logs_without_a_file_drops_other_libraries_lines():
    proc = _run("-c", ROUTE_SCRIPT, "-", "0", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "OURS-INFO" in proc.stderr and not any(mark in proc.stderr for mark in THEIRS)
