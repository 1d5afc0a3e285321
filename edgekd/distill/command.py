"""What ``edgekd distill`` needs beyond the Python API: parsing its options, loading a teacher from
weights plus an architecture JSON (never a pickle), and writing and printing its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.markup import escape
from rich.table import Table

from edgekd.errors import ConfigError, DataError
from edgekd.preflight import check_student_numbers

_ARCH_KEYS = ("schema", "name", "input_shape", "num_classes", "qat_format")  # arch JSON keys that are not kwargs


def _opts(flag: str, pairs: list[str], accepted: dict, owner: str) -> dict:
    """``KEY=VALUE`` strings → kwargs; VALUE is JSON (else a string), coerced to the default's type."""
    import json

    kwargs = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE")
        if key not in accepted:
            raise ConfigError(f"{flag} {key}: {owner} takes no option {key!r}; valid: {', '.join(accepted)}")
        default = accepted[key]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if default is None:  # no default to say what a bare word means: JSON only
                raise ConfigError(f"{flag} {key}={text}: not JSON (quote strings: {key}='\"name\"')") from None
            value = text
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # temperature=4 and temperature=4.0 are the same run (and checkpoint)
        if default is not None and not isinstance(default, (list, tuple)) and type(value) is not type(default):
            kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(default), "a string")
            raise ConfigError(f"{flag} {key}={text}: {owner} expects {kind} (default {default!r})")
        kwargs[key] = value
    return kwargs


def _parameters(fn, skip=()) -> dict:
    import inspect

    return {n: p.default if p.default is not inspect.Parameter.empty else None
            for n, p in inspect.signature(fn).parameters.items()
            if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _make_loss(name: str, pairs: list[str]):
    from edgekd.distill.losses import create_loss

    try:
        cls = type(create_loss(name))
    except ConfigError as exc:
        raise ConfigError(f"--loss: {exc}") from None
    kwargs = _opts("--loss-opt", pairs, _parameters(cls), f"loss {name!r}")
    try:
        return create_loss(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--loss-opt: loss {name!r} rejected {kwargs}: {exc}") from None


def _student_kwargs(name: str, pairs: list[str]) -> dict:
    from edgekd.models import student_info

    try:
        info = student_info(name)
    except ConfigError as exc:
        raise ConfigError(f"--student: {exc}") from None
    kwargs = _opts("--student-opt", pairs, _parameters(info.factory, ("input_shape", "num_classes")),
                   f"student {name!r}")
    check_student_numbers(kwargs, "--student-opt")  # widths=[1e5, ...] would allocate hundreds of GB
    return kwargs


def _build_student(name: str, kwargs: dict, data, seed: int):
    import torch

    from edgekd.models import create_student

    torch.manual_seed(seed)  # the initial weights, so a rerun with the same --seed is the same run
    try:
        return create_student(name, data.train.input_shape, data.num_classes, **kwargs)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"--student-opt: {exc}") from None


def _qat_format(target: Optional[str], qat: bool):
    from edgekd.targets import load_target

    if qat and not target:
        raise ConfigError("--qat needs --target (a target name or TOML path; `edgekd targets` lists them)")
    if target and not qat:
        raise ConfigError("--target only sets the format --qat trains in; add --qat, or drop --target")
    if not qat:
        return None
    try:
        fmt = load_target(target).format
    except ConfigError as exc:
        raise ConfigError(f"--target: {exc}") from None
    if not fmt.is_quantized and fmt.weights != "fp16":  # what prepare_qat accepts, checked before training
        raise ConfigError(f"--target {target}: format {fmt.key} is fp32, nothing to train quantization-aware; "
                          "drop --qat")
    return fmt


def _check_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    # checkpoint names as edgekd.distill.api writes them
    if resume and not any((out / n).exists() for n in ("distill.ckpt", "distill.qat.ckpt")):
        raise ConfigError(f"--resume: no checkpoint in {out} (distill.ckpt); run once without --resume")


def _distill_summary(model, teacher, teacher_info: dict, data, loss: str, loss_fn, out: Path, seed: int) -> dict:
    import json

    from edgekd.distill import record

    written = json.loads((out / "distill.json").read_text())  # edgekd.distill's own record of the run
    summary = record.summary(model, teacher, data.train, data.val, loss_fn, seed=seed,
                             epochs=len(model.edgekd_history), resumed_from_epoch=written["resumed_from_epoch"])
    summary["teacher"] = {**teacher_info, **summary["teacher"]}
    summary["student"]["arch"] = _arch_card(model, data)
    summary["loss"]["name"] = loss
    return {"dataset": data.name, **summary}


def _distill_data(dataset: str, data_dir: Optional[Path], val_fraction: float, seed: int):
    from edgekd.data import load_dataset, split
    from edgekd.pipeline import _Data

    if dataset == "folder" and data_dir is None:
        raise ConfigError("--data-dir: --dataset folder needs the image folder (DATA_DIR/<class>/<image>)")
    try:
        bundle = load_dataset(dataset, **({"root": data_dir} if data_dir is not None else {}))
    except TypeError:
        raise ConfigError(f"--data-dir: dataset {dataset!r} reads no folder; drop --data-dir") from None
    except DataError as exc:
        raise DataError(f"{'--data-dir' if data_dir is not None else '--dataset'}: {exc}") from None
    if bundle.test is not None:
        train, val = bundle.train, bundle.test
    else:
        val, train = split(bundle.train, max(1, int(len(bundle.train) * val_fraction)), seed)
    return _Data(bundle.name, train, val, bundle.spec, True, True)


def _distill_teacher(path: Optional[Path], arch_path: Optional[Path], data, loss_fn, seed: int, progress: bool):
    from edgekd.pipeline import _prepare_teacher

    if path is None and arch_path is not None:
        raise ConfigError("--teacher-arch needs --teacher (the weights)")
    if path is None and not loss_fn.needs_teacher:
        return None, {"arch": None, "source": "none (the loss needs no teacher)"}
    model = None
    if path is not None:
        model = _load_weights_and_arch(path, arch_path or path.with_suffix(".json"), data, "--teacher")
    try:
        teacher, info = _prepare_teacher(model, data, seed, progress)
    except DataError as exc:
        raise DataError(f"--teacher: {exc}") from None
    if path is not None:
        info.update(arch=_arch_card(teacher, data), weights=str(path))
    return teacher, info


def _load_weights_and_arch(weights: Path, arch_path: Path, data, flag: str):
    """A state_dict (``weights_only=True``) into a model built from its arch JSON: no object is unpickled."""
    import json

    import torch

    for p in (weights, arch_path):
        if not p.is_file():
            raise ConfigError(f"{flag}: {p} not found (a teacher is a state_dict file plus its architecture JSON)")
    try:
        arch = json.loads(arch_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{flag}: {arch_path}: not JSON ({exc})") from None
    model = _model_from_arch(arch, data, f"{flag} {arch_path}")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a file it will not read
        raise ConfigError(f"{flag}: {weights} is not a state_dict readable with weights_only=True "
                          f"({type(exc).__name__}); save model.state_dict(), not the pickled model") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{flag}: {weights} holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"{flag}: {weights} does not fit the architecture in {arch_path}: "
                          f"{str(exc).splitlines()[-1].strip()}") from None
    return model.eval()


def _model_from_arch(arch, data, where: str):
    import torch

    from edgekd.models import TeacherCNN, create_student, list_students
    from edgekd.targets import NumericFormat

    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise ConfigError(f"{where}: expected {{\"name\": <architecture>, ...arguments}}")
    shape, classes = data.train.input_shape, data.num_classes
    for key, have in (("input_shape", list(shape)), ("num_classes", classes)):
        if key in arch and arch[key] != have:
            raise DataError(f"{where}: {key} {arch[key]} but the data has {have}")
    kwargs = {k: v for k, v in arch.items() if k not in _ARCH_KEYS}
    try:
        if arch["name"] == "TeacherCNN":
            model = TeacherCNN(shape, classes, **kwargs)
            model.edgekd_arch = {"name": "TeacherCNN", **kwargs}
        elif arch["name"] in list_students():
            model = create_student(arch["name"], shape, classes, **kwargs)
        else:
            raise ConfigError(f"unknown architecture {arch['name']!r}; valid: "
                              f"{', '.join(['TeacherCNN', *list_students()])}")
        if arch.get("qat_format"):  # scales, zero points and BN folding come back with the weights
            from edgekd.quant import prepare_qat

            fmt = NumericFormat.model_validate(arch["qat_format"])
            model = prepare_qat(model, fmt, torch.zeros(1, *shape))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return model


def _arch_card(model, data) -> dict:
    """What student.json holds: rebuild with the registry, then load the state_dict."""
    from edgekd.distill.record import arch_card

    return arch_card(model, data.train.input_shape, data.num_classes)


def _write_distill_outputs(out: Path, data, summary: dict) -> None:
    from edgekd._io import write_json

    write_json(out / "student.json", summary["student"]["arch"])
    data.spec.save(out / "preprocess.json")
    write_json(out / "summary.json", summary)


def _distill_table(s: dict) -> Table:
    pct = lambda x: "—" if x is None else f"{x * 100:.2f}%"  # noqa: E731
    arch = s["student"]["arch"]
    table = Table(title=f"edgekd distill ({s['dataset']}, {s['epochs']} epochs, {s['seconds']:.0f} s)")
    table.add_column("")
    table.add_column("value")
    table.add_row("teacher val top-1", f"{pct(s['teacher']['val_accuracy'])} ({escape(s['teacher']['source'])})")
    table.add_row("student val top-1", pct(s["student"]["val_accuracy"]) +
                  (f" (QAT {s['qat']['format']['weights']}/{s['qat']['format']['activations']})" if s["qat"] else ""))
    table.add_row("student", escape(f"{arch['name']} " + " ".join(
        f"{k}={v}" for k, v in arch.items() if k not in _ARCH_KEYS)))
    table.add_row("loss terms (last epoch)", f"{s['loss']['name']}: " + ", ".join(
        f"{k} {v:.4f}" for k, v in s["loss"]["terms"].items()))
    if s["resumed_from_epoch"]:
        table.add_row("resumed from epoch", str(s["resumed_from_epoch"]))
    return table
