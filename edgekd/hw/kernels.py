"""The kernels a runtime really runs, read from the runtime itself (after its fusions), with their shapes.

nn-Meter's lesson: predict latency per fused kernel, not per layer of the source graph, because a
runtime fuses differently per CPU and precision (ONNX Runtime folds an Add into the convolution
before it on AVX-512; OpenVINO keeps it as an Eltwise kernel). ONNX Runtime's node profiler and
OpenVINO's runtime model name every kernel with its type, shapes and the source nodes it absorbed.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError, require
from edgekd.hw.profiler import ort_options
from edgekd.ort_session import ort_session

# kernel types that move or relabel data without arithmetic worth a predictor of their own
NO_COMPUTE = frozenset({"Parameter", "Result", "Const", "Constant", "Output", "Identity"})
KERNEL_FEATURES = ("log_macs", "log_out", "log_in", "log_params", "kernel_area", "depthwise", "stride",
                   "channels_in", "channels_out")


@dataclass(frozen=True)
class Kernel:
    """One kernel as the runtime runs it.

    Attributes:
        op: the runtime's kernel type (ONNX Runtime ``op_name``, OpenVINO ``layerType``).
        fused: the source-graph nodes the kernel runs (OpenVINO; empty where the runtime does not say).
        inputs: input shapes (activations first, then weights where the kernel takes them).
        output: the first output's shape.
        ms: measured time, where a profiled run measured it.
    """

    name: str
    op: str
    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    fused: tuple[str, ...] = ()
    precision: str = "fp32"
    ms: float | None = None

    @property
    def weight(self) -> tuple[int, ...] | None:
        """The weight shape: a 4-D (conv) or 2-D (matmul) input after the first that is not an activation
        (an element-wise kernel's second operand has the batch of 1 first, or the activation's shape)."""
        for shape in self.inputs[1:]:
            activation = shape in (self.inputs[0], self.output) or (len(shape) == 4 and shape[0] == 1)
            if len(shape) in (4, 2) and math.prod(shape) > 1 and not activation:
                return shape
        return None

    @property
    def macs(self) -> int:
        """Multiply-accumulates (one operation per output element for kernels without weights)."""
        w, out = self.weight, math.prod(self.output) if self.output else 0
        x = self.inputs[0] if self.inputs else ()
        if w is not None and len(w) == 4:
            return out * math.prod(w[1:])
        if w is not None:  # [out, in] or [in, out]: the dimension that is not the output's
            return out * (w[1] if w[0] == self.output[-1] else w[0])
        if len(x) == 2 and len(self.output) == 2:  # a matmul whose weights the runtime prepacked away
            return out * x[-1]
        return out

    def features(self) -> list[float]:
        """The numeric description one per-type predictor sees (:data:`KERNEL_FEATURES`)."""
        w = self.weight
        x = self.inputs[0] if self.inputs else ()
        c_in = x[1] if len(x) == 4 else (x[-1] if x else 0)
        c_out = self.output[1] if len(self.output) == 4 else (self.output[-1] if self.output else 0)
        area = w[2] * w[3] if w is not None and len(w) == 4 else 1
        depthwise = float(w is not None and len(w) == 4 and w[1] == 1 and c_out > 1)
        stride = x[2] / self.output[2] if len(x) == 4 and len(self.output) == 4 and self.output[2] else 1.0
        params = math.prod(w) if w is not None else 0
        return [math.log1p(self.macs), math.log1p(math.prod(self.output) if self.output else 0),
                math.log1p(math.prod(x) if x else 0), math.log1p(params), float(area), depthwise, float(stride),
                float(c_in), float(c_out)]

    def to_json(self) -> dict:
        return {"name": self.name, "op": self.op, "inputs": [list(s) for s in self.inputs],
                "output": list(self.output), "fused": list(self.fused), "precision": self.precision, "ms": self.ms}

    @classmethod
    def from_json(cls, data: dict) -> "Kernel":
        return cls(data["name"], data["op"], tuple(tuple(s) for s in data["inputs"]), tuple(data["output"]),
                   tuple(data.get("fused", ())), data.get("precision", "fp32"), data.get("ms"))


def runtime_kernels(path: Path, input_shape, *, runtime: str = "onnxruntime", threads: int = 1, runs: int = 1,
                    seed: int = 0) -> list[Kernel]:
    """The kernels ``runtime`` runs for the model file at batch 1, in execution order, with their times.

    ``runs`` > 1 averages each kernel's time over that many profiled inferences (after one warm-up).
    """
    x = np.random.default_rng(seed).standard_normal((1, *input_shape)).astype(np.float32)
    if runtime == "onnxruntime":
        return _ort_kernels(Path(path), x, threads, runs)
    if runtime == "openvino":
        return _openvino_kernels(Path(path), x, threads, runs)
    raise ConfigError(f"runtime_kernels: no kernel reader for {runtime!r}; valid: onnxruntime, openvino")


def _ort_kernels(path: Path, x: np.ndarray, threads: int, runs: int) -> list[Kernel]:
    with tempfile.TemporaryDirectory() as tmp:
        sess = ort_session(path, options=ort_options(threads, str(Path(tmp) / "k")))
        feed = {sess.get_inputs()[0].name: x}
        for _ in range(1 + runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    order: dict[str, dict] = {}
    times: dict[str, list[float]] = {}
    for ev in events:
        name = ev.get("name", "")
        if ev.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        order.setdefault(node, ev["args"])
        times.setdefault(node, []).append(ev["dur"] / 1000.0)
    kernels = []
    for node, args in order.items():
        ins = tuple(tuple(next(iter(t.values()))) for t in args.get("input_type_shape", []))
        outs = [tuple(next(iter(t.values()))) for t in args.get("output_type_shape", [])]
        dtype = next(iter(args["input_type_shape"][0])) if args.get("input_type_shape") else "float"
        kernels.append(Kernel(node, args.get("op_name", "?"), ins, outs[0] if outs else (),
                              precision="int8" if dtype in ("int8", "uint8") else "fp32",
                              ms=float(np.median(times[node][-runs:]))))
    return kernels


def _openvino_kernels(path: Path, x: np.ndarray, threads: int, runs: int) -> list[Kernel]:
    ov = require("openvino", "openvino")
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                        "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    for _ in range(3):  # the first inferences still pick and compile kernels
        request.infer({0: x})
    times: dict[str, list[float]] = {}
    for _ in range(runs):  # the counters describe the last inference only
        request.infer({0: x})
        for pi in request.get_profiling_info():
            if pi.status.name != "NOT_RUN":
                times.setdefault(pi.node_name, []).append(pi.real_time.total_seconds() * 1000.0)
    kernels = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        name = op.get_friendly_name()
        if kind in NO_COMPUTE or name not in times:
            continue
        ins = tuple(tuple(int(d) for d in op.input(i).get_partial_shape().to_shape()) for i in range(op.get_input_size()))
        out = tuple(int(d) for d in op.get_output_partial_shape(0).to_shape()) if op.get_output_size() else ()
        fused = tuple(n for n in info["originalLayersNames"].astype(str).split(",") if n)
        precision = info["outputPrecisions"].astype(str) if "outputPrecisions" in info else "f32"
        kernels.append(Kernel(name, kind, ins, out, fused, "int8" if "i8" in precision else "fp32",
                              float(np.median(times[name]))))
    return kernels


@dataclass(frozen=True)
class Partition:
    """How an ExecuTorch program splits between delegates and portable CPU kernels, in execution order."""

    delegates: tuple[str, ...]  # backend id of each delegate call (e.g. XnnpackBackend)
    portable_ops: tuple[str, ...]  # operators run outside any delegate (e.g. aten::topk)

    @property
    def fully_delegated(self) -> bool:
        return bool(self.delegates) and not self.portable_ops


def pte_partition(path: Path) -> Partition:
    """Read an ExecuTorch ``.pte``'s delegate partition (what XNNPACK took, what stayed portable)."""
    require("executorch", "executorch")
    # heavy SDK: imported on first use
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(Path(path).read_bytes())
    program = getattr(program, "program", program)  # newer releases wrap the Program
    plan = program.execution_plan[0]
    delegates, portable = [], []
    for chain in plan.chains:
        for instruction in chain.instructions:
            args = instruction.instr_args
            if type(args).__name__ == "DelegateCall":
                delegates.append(plan.delegates[args.delegate_index].id)
            elif type(args).__name__ == "KernelCall":
                portable.append(plan.operators[args.op_index].name)
    return Partition(tuple(delegates), tuple(portable))
