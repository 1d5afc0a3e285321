"""Intel NPU through OpenVINO's ``NPU`` device: the OpenVINO backend with the NPU as its device.

A separate registry name so that availability is the NPU's (here OpenVINO's own error, e.g. the
NPU compiler library or driver missing), not the CPU's.
"""

from __future__ import annotations

from dataclasses import replace

from edgekd.backends.openvino import OpenVinoBackend, OpenVinoRunner, device_status


class OpenVinoNpuBackend(OpenVinoBackend):
    name = "openvino-npu"

    def can_compile(self) -> tuple[bool, str]:
        return device_status("CPU")  # the IR is built with the CPU-side OpenVINO install

    def is_available(self) -> tuple[bool, str]:
        return device_status("NPU")

    def reference(self, artifact, threads: int = 1):
        """(runner, label): the NPU's own IR compiled for OpenVINO's CPU plugin, where the NPU is absent."""
        on_cpu = replace(artifact, details={**artifact.details, "device": "CPU"})
        return OpenVinoRunner(on_cpu, threads), "OpenVINO CPU plugin running the NPU's int8 IR (not the NPU)"


BACKEND = OpenVinoNpuBackend()
