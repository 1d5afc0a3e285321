"""Run the fault suite (tests/faults) and print one line: tried / clear error / crash / hang / data loss / security.

Every case feeds edgekd one bad input or fault (a path escape, a tampered artifact, a kill during a
rebuild, a malformed file, an absurd request...) and asserts the clear outcome: a specific
EdgeKDError (exit 2 in the CLI), a 4xx, a closed connection, nothing written outside --out. A
case that fails is counted under what its failure means (its ``fault`` marker or its module's
kind, see tests/faults/conftest.py); a case running past ``--timeout`` seconds is a hang.

    python bench/faults.py            # the fast cases (as CI runs them)
    python bench/faults.py --slow     # also the slow ones (SIGKILL during a rebuild)
    python bench/faults.py --json bench/results/faults.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class Tally:
    """A pytest plugin counting each case's outcome by the kind of fault it guards against."""

    def __init__(self):
        self.outcomes: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.failed: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        sys.path.insert(0, str(ROOT / "tests" / "faults"))
        from conftest import fault_kind

        self.kinds[item.nodeid] = fault_kind(item)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            if report.outcome == "skipped":
                self.outcomes[report.nodeid] = "skipped"
            elif report.outcome == "failed":
                text = str(report.longrepr)
                self.outcomes[report.nodeid] = "hang" if "Timeout" in text else self.kinds.get(report.nodeid,
                                                                                             "crash")
                self.failed.append(report.nodeid)
            else:
                self.outcomes[report.nodeid] = "clear error"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slow", action="store_true", help="include the slow cases")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds after which a case counts as a hang")
    p.add_argument("--json", type=Path, help="also write the counts and failed cases here")
    args = p.parse_args(argv)
    tally = Tally()
    started = time.perf_counter()
    pytest.main([str(ROOT / "tests" / "faults"), "-q", "-p", "no:cacheprovider", "--no-header", "-o",
                 "addopts=", "-m", "" if args.slow else "not slow", f"--timeout={args.timeout}"], plugins=[tally])
    counts = Counter(tally.outcomes.values())
    tried = sum(v for k, v in counts.items() if k != "skipped")
    line = (f"faults: tried {tried} / clear error {counts['clear error']} / crash {counts['crash']} / "
            f"hang {counts['hang']} / data loss {counts['data loss']} / security {counts['security']}"
            f" ({counts['skipped']} skipped, {time.perf_counter() - started:.0f} s)")
    print(line)
    if args.json:
        args.json.write_text(json.dumps({"line": line, "counts": dict(counts), "failed": tally.failed}, indent=2))
    return 0 if tried and counts["clear error"] == tried else 1


if __name__ == "__main__":
    sys.exit(main())
