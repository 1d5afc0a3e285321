"""What each backend can do on this machine: installed, available (runs here), hardware present."""

from __future__ import annotations

import platform
from pathlib import Path

from edgekd.backends.base import _TABLE, get_backend

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


def doctor() -> list[dict]:
    """One row per registered backend, with the reason for every gap."""
    rows = []
    for name, entry in sorted(_TABLE.items()):
        row = {"backend": name, "extra": entry.extra, "summary": entry.summary}
        try:
            backend = get_backend(name)
        except Exception as exc:  # noqa: BLE001 - an SDK can fail at import in many ways
            row.update(installed=False, installed_reason=f"{exc}; pip install 'edgekd[{entry.extra}]'",
                       available=False, available_reason="not installed")
        else:
            ok, why = backend.can_compile() if hasattr(backend, "can_compile") else (True, "")
            row.update(installed=ok, installed_reason=why)
            try:
                row["available"], row["available_reason"] = backend.is_available()
            except Exception as exc:  # noqa: BLE001
                row["available"], row["available_reason"] = False, f"{type(exc).__name__}: {exc}"
        row["hardware"], row["hardware_reason"] = hardware_present(name)
        rows.append(row)
    return rows
