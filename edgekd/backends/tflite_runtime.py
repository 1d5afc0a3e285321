"""Running an int8 TFLite model here: TensorFlow Lite Micro (the Cortex-M runtime) or LiteRT's
reference kernels. Float32 NCHW in, float32 logits out; quantization at the int8 NHWC boundary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from edgekd.backends.tflite_writer import QParams
from edgekd.errors import require


class LiteRTRunner:
    """The int8 TFLite in LiteRT on the CPU with reference kernels: float32 NCHW in, float32 logits out."""

    backend = "ethosu-reference"

    def __init__(self, path: Path, threads: int = 1):
        litert = require("ai_edge_litert.interpreter", "ethosu")
        # Reference kernels: TFLite Micro runs these (or bit-exact CMSIS-NN) beside the Ethos-U.
        self.interpreter = litert.Interpreter(model_path=str(path), num_threads=threads,
                                              experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
        self.interpreter.allocate_tensors()
        i, o = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = i["index"], o["index"]
        self.q_in, self.q_out = QParams(*i["quantization"]), QParams(*o["quantization"])
        self.input_shape = tuple(i["shape"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        outs = []
        for sample in x:  # the model has a static batch of 1, as the NPU runs it
            self.interpreter.set_tensor(self.input_index, self.q_in.quantize(sample.transpose(1, 2, 0)[None]))
            self.interpreter.invoke()
            outs.append(self.q_out.dequantize(self.interpreter.get_tensor(self.output_index)).reshape(-1))
        return np.stack(outs)


class TFLMRunner:
    """The int8 TFLite in TensorFlow Lite Micro, the runtime on the Cortex-M beside an Ethos-U."""

    backend = "ethosu-reference"

    def __init__(self, path: Path, threads: int = 1):  # noqa: ARG002 - TFLM is single-threaded
        # heavy SDK: imported on first use
        from tflite_micro.python.tflite_micro import runtime

        self.interpreter = runtime.Interpreter.from_file(str(path))
        i, o = self.interpreter.get_input_details(0), self.interpreter.get_output_details(0)
        qi, qo = i["quantization_parameters"], o["quantization_parameters"]
        self.q_in = QParams(float(qi["scales"][0]), int(qi["zero_points"][0]))
        self.q_out = QParams(float(qo["scales"][0]), int(qo["zero_points"][0]))
        self.input_shape = tuple(int(d) for d in i["shape"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outs = []
        for sample in np.asarray(x, np.float32):
            self.interpreter.set_input(self.q_in.quantize(sample.transpose(1, 2, 0)[None]), 0)
            self.interpreter.invoke()
            outs.append(self.q_out.dequantize(self.interpreter.get_output(0)).reshape(-1))
        return np.stack(outs)


def reference_runner(path: Path, threads: int = 1):
    """(runner, label): TFLite Micro when installed (what the microcontroller runs), else LiteRT's
    reference kernels (within one int8 output step of TFLM: tests/backends/test_tflite_int8.py)."""
    if importlib.util.find_spec("tflite_micro") is not None:
        return TFLMRunner(path), "TensorFlow Lite Micro reference kernels"
    return LiteRTRunner(path, threads), "LiteRT reference kernels"
