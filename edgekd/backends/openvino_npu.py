"""Intel NPU through OpenVINO's ``NPU`` device: the OpenVINO backend with the NPU as its device.

A separate registry name so that availability is the NPU's (here OpenVINO's own error, e.g. the
NPU compiler library or driver missing), not the CPU's.
"""

from __future__ import annotations

from edgekd.backends.openvino import OpenVinoBackend, device_status


class OpenVinoNpuBackend(OpenVinoBackend):
    name = "openvino-npu"

    def can_compile(self) -> tuple[bool, str]:
        return device_status("CPU")  # the IR is built with the CPU-side OpenVINO install

    def is_available(self) -> tuple[bool, str]:
        return device_status("NPU")


BACKEND = OpenVinoNpuBackend()
