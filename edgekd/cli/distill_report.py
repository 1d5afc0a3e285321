"""What ``edgekd distill`` writes and prints after training: summary.json, student.json, the summary table."""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from edgekd._io import write_json
from edgekd.distill import record
from edgekd.models.loading import ARCH_KEYS


def arch_card(model, data) -> dict:
    """What student.json holds: rebuild with the registry, then load the state_dict."""
    return record.arch_card(model, data.train.input_shape, data.num_classes)


def distill_summary(model, teacher, teacher_info: dict, data, loss: str, loss_fn, out: Path, seed: int,
                    device: str = "cpu") -> dict:
    written = json.loads((out / "distill.json").read_text())  # edgekd.distill's own record of the run
    summary = record.summary(model, teacher, data.train, data.val, loss_fn, seed=seed,
                             epochs=len(model.edgekd_history), resumed_from_epoch=written["resumed_from_epoch"],
                             device=device)
    summary["teacher"] = {**teacher_info, **summary["teacher"]}
    summary["student"]["arch"] = arch_card(model, data)
    summary["loss"]["name"] = loss
    return {"dataset": data.name, **summary}


def write_distill_outputs(out: Path, data, summary: dict) -> None:
    write_json(out / "student.json", summary["student"]["arch"])
    data.spec.save(out / "preprocess.json")
    write_json(out / "summary.json", summary)


def distill_table(s: dict) -> Table:
    pct = lambda x: "—" if x is None else f"{x * 100:.2f}%"  # noqa: E731
    arch = s["student"]["arch"]
    table = Table(title=f"edgekd distill ({s['dataset']}, {s['epochs']} epochs, {s['seconds']:.0f} s)")
    table.add_column("")
    table.add_column("value")
    table.add_row("teacher val top-1", f"{pct(s['teacher']['val_accuracy'])} ({escape(s['teacher']['source'])})")
    table.add_row("student val top-1", pct(s["student"]["val_accuracy"]) +
                  (f" (QAT {s['qat']['format']['weights']}/{s['qat']['format']['activations']})" if s["qat"] else ""))
    table.add_row("student", escape(f"{arch['name']} " + " ".join(
        f"{k}={v}" for k, v in arch.items() if k not in ARCH_KEYS)))
    table.add_row("loss terms (last epoch)", f"{s['loss']['name']}: " + ", ".join(
        f"{k} {v:.4f}" for k, v in s["loss"]["terms"].items()))
    if s["resumed_from_epoch"]:
        table.add_row("resumed from epoch", str(s["resumed_from_epoch"]))
    return table
