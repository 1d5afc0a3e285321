"""torchrun with 2 CPU processes (gloo): same accuracy as 1 process, ranks in sync, only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(args, out: Path, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    out.mkdir()
    proc = subprocess.run([sys.executable, *args, str(WORKER), str(out)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(tmp_path):
    single = _run([], tmp_path / "one")
    double = _run(["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"],
                  tmp_path / "two")
    assert double["world"] == 2 and single["world"] == 1
    assert abs(double["accuracy"] - single["accuracy"]) <= 0.04, (single, double)
    rank1 = json.loads((tmp_path / "two" / "rank1.json").read_text())
    assert rank1["param0"] == double["param0"]  # DDP kept the replicas identical
    written = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert written == ["distill.ckpt", "distill.json", "rank1.json", "result.json", "student.pt"]
