"""The backend contract: every backend subclasses Backend, whose defaults answer as the old probes did;
the base runner's batching; ONNX Runtime session options from one helper."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edgekd.backends.base import BACKENDS, Artifact, Backend, BaseRunner, get_backend, list_backends
from edgekd.errors import ConfigError, EdgeKDError
from edgekd.ort_session import ort_session, session_options
from edgekd.targets import list_targets

# What callers probed for before the base declared it: who defines each capability itself.
HAS_REFERENCE = {"ethosu", "openvino-npu", "tensorrt"}
ACCEPTS_QAT = {"onnxruntime", "openvino", "openvino-npu"}
OWN_COMPILE_CHECK = {"coreml", "ethosu", "openvino-npu"}


@pytest.mark.parametrize("name", list_backends())
def test_backend_subclasses_the_contract_under_its_registry_name(name):
    backend = get_backend(name)
    assert isinstance(backend, Backend)
    assert backend.name == name
    assert BACKENDS.entry(name).obj.module == type(backend).__module__


@pytest.mark.parametrize("name", list_backends())
def test_backend_defaults_answer_as_the_old_probes(name):
    backend = get_backend(name)
    # the declared has_reference and a hasattr probe agree: only real reference runtimes say yes
    assert hasattr(backend, "reference") == backend.has_reference == (name in HAS_REFERENCE)
    assert backend.accepts_qat == (name in ACCEPTS_QAT)
    assert isinstance(backend.emulated, bool)
    if name not in OWN_COMPILE_CHECK:
        assert backend.can_compile() == (True, "")  # what doctor and capability assumed without can_compile
    for target in list_targets():
        if target.backend == name:
            assert backend.is_available_for(target) == backend.is_available()


def test_a_backend_without_a_bare_file_runner_says_so_with_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="coreml"):
        get_backend("coreml").load_file(tmp_path / "model.mlpackage")


class _Echo(BaseRunner):
    backend = "echo"

    def __init__(self, artifact):
        super().__init__(artifact)
        self.calls: list[int] = []

    def run_batch(self, x):
        self.calls.append(len(x))
        return x.reshape(len(x), -1)[:, :2] * 2.0


def _artifact(static_batch):
    return Artifact(path="m", backend="echo", target="t", precision="fp32", input_shape=(1, 2, 2),
                    static_batch=static_batch)


def test_base_runner_feeds_a_static_batch_runtime_in_padded_chunks():
    runner = _Echo(_artifact(4))
    x = np.arange(6 * 4, dtype=np.float32).reshape(6, 1, 2, 2)
    out = runner(x)
    assert runner.calls == [4, 4]  # 6 samples: one full chunk, one padded to 4
    np.testing.assert_array_equal(out, x.reshape(6, -1)[:, :2] * 2.0)


def test_base_runner_passes_a_dynamic_batch_whole_and_adds_the_batch_axis_to_one_sample():
    runner = _Echo(_artifact(None))
    assert runner(np.ones((5, 1, 2, 2))).shape == (5, 2) and runner.calls == [5]
    assert runner(np.ones((1, 2, 2))).shape == (1, 2)


def test_base_runner_rejects_the_wrong_input_shape():
    with pytest.raises(EdgeKDError):
        _Echo(_artifact(None))(np.ones((2, 3, 2, 2)))


def test_session_options_default_to_onnxruntime_defaults():
    ours, theirs = session_options(), ort.SessionOptions()
    for field in ("intra_op_num_threads", "inter_op_num_threads", "execution_mode", "graph_optimization_level",
                  "log_severity_level", "enable_profiling", "optimized_model_filepath"):
        assert getattr(ours, field) == getattr(theirs, field), field


def test_session_options_set_what_each_caller_asks():
    timing = session_options(3, quiet=True, profile_prefix="p")
    assert (timing.intra_op_num_threads, timing.inter_op_num_threads) == (3, 1)
    assert timing.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert timing.log_severity_level == 3 and timing.enable_profiling and timing.profile_file_prefix == "p"
    plugin = session_options(2, sequential=False)
    assert plugin.intra_op_num_threads == 2 and plugin.inter_op_num_threads == ort.SessionOptions().inter_op_num_threads
    observe = session_options(optimize=False)
    assert observe.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL


def test_ort_session_runs_a_model_and_refuses_options_twice(tmp_path):
    import torch

    from edgekd.onnx_export import export_onnx

    path = export_onnx(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)), (1, 2, 2), tmp_path / "m.onnx")
    session = ort_session(path, 1)
    x = np.ones((2, 1, 2, 2), np.float32)
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (2, 3)
    with pytest.raises(TypeError):
        ort_session(path, 1, options=session_options())
