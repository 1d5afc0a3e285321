"""What each backend can do on this machine: installed, available (runs here), hardware present."""

from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

from edgekd.backends.base import BACKENDS, backend_entry, get_backend, list_backends

# Where the accelerator a backend targets would show up on this host, and what it is.
_HARDWARE = {
    "onnxruntime": ("cpu", "x86-64/arm64 CPU"),
    "openvino": ("cpu", "Intel/AMD x86-64 CPU"),
    "openvino-npu": ("/dev/accel/accel0", "Intel NPU (Core Ultra)"),
    "tensorrt": ("/dev/nvidia0", "NVIDIA GPU"),
    "qnn": ("/dev/fastrpc-cdsp", "Qualcomm Hexagon NPU (Snapdragon)"),
    "ethosu": ("/dev/ethosu0", "Arm Ethos-U NPU"),
    "coreml": ("darwin", "Apple device running macOS/iOS"),
    "executorch": ("cpu", "CPU (XNNPACK)"),
}


def hardware_present(name: str) -> tuple[bool, str]:
    where, what = _HARDWARE.get(name, ("cpu", "CPU"))
    if where == "cpu":
        return True, f"{platform.machine()} CPU"
    if where == "darwin":
        return platform.system() == "Darwin", what if platform.system() == "Darwin" else f"no {what}"
    if Path(where).exists():
        return True, f"{what} ({where})"
    emulated = "; its HTP backend runs emulated on this CPU (numbers, not device speed)" if name == "qnn" else ""
    return False, f"no {what} ({where} absent){emulated}"


# The package each backend's runtime comes in: "installed" means this one imports, whatever the
# backend can build without it (TensorRT's QDQ ONNX needs no tensorrt).
_RUNTIME = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino-npu": "openvino", "tensorrt": "tensorrt",
            "qnn": "onnxruntime", "ethosu": "ethosu.vela", "coreml": "coremltools", "executorch": "executorch"}


def runtime_installed(name: str) -> tuple[bool, str]:
    """Whether the backend's runtime package is importable (found, not imported: no import-time noise)."""
    package = _RUNTIME.get(name)
    if package is None:
        return True, ""
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a parent package missing or broken
        found = False
    extra = backend_entry(name).extra if name in BACKENDS else None
    hint = f"; pip install 'edgekd[{extra}]'" if extra else ""
    return found, "" if found else f"the {package.split('.')[0]} package is not importable{hint}"


def doctor() -> list[dict]:
    """One row per registered backend, with the reason for every gap."""
    rows = []
    for name in list_backends():
        entry = backend_entry(name)
        row = {"backend": name, "extra": entry.extra, "summary": entry.summary}
        try:
            backend = get_backend(name)
        except Exception as exc:  # noqa: BLE001 - an SDK can fail at import in many ways
            row.update(installed=False, installed_reason=f"{exc}; pip install 'edgekd[{entry.extra}]'",
                       builds=False, builds_reason="not installed", available=False, available_reason="not installed")
        else:
            ok, why = backend.can_compile()
            row.update(builds=ok, builds_reason=why)
            row["installed"], row["installed_reason"] = runtime_installed(name)
            try:
                row["available"], row["available_reason"] = backend.is_available()
            except Exception as exc:  # noqa: BLE001
                row["available"], row["available_reason"] = False, f"{type(exc).__name__}: {exc}"
        row["hardware"], row["hardware_reason"] = hardware_present(name)
        rows.append(row)
    return rows
