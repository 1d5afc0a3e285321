"""What this CPU's int8 kernels can do without losing precision (read from /proc/cpuinfo)."""

from __future__ import annotations

import platform


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def x86_without_vnni() -> bool:
    """An x86-64 CPU without an int8 dot-product instruction (VNNI, AMX): ONNX Runtime's and OpenVINO's
    int8 kernels then sum u8×s8 pairs in saturating int16 (``vpmaddubsw``), which full-range int8
    weights can overflow."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    flags = cpu_flags()
    return bool(flags) and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}
