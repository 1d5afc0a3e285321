"""Where training runs: bad devices are refused before training; "auto" changes nothing on a CPU machine."""

from __future__ import annotations

import json

import pytest
import torch

import edgekd
from edgekd.distill import TrainConfig, fit
from edgekd.distill.device import check_device, resolve_device
from edgekd.distill.losses import KD
from edgekd.errors import ConfigError
from edgekd.models import create_student

NO_CUDA = not torch.cuda.is_available()


def _student():
    torch.manual_seed(0)
    return create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 16))


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "", "CPU", 0])
def test_check_device_refuses_names_that_are_no_device(name):
    with pytest.raises(ConfigError, match="use cpu, cuda, cuda:N or auto"):
        check_device(name)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_refused_naming_the_flag(name):
    with pytest.raises(ConfigError, match=r"--device .*no CUDA device here"):
        check_device(name, "--device")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_auto_trains_on_the_cpu_bit_identically_when_there_is_no_gpu(digits, digits_teacher):
    train = digits[0].subset(range(256))
    assert resolve_device("auto") == torch.device("cpu")
    results = []
    for device in ("cpu", "auto"):
        config = TrainConfig(epochs=1, batch_size=64, progress=False, device=device)
        model = fit(_student(), train, None, KD(), digits_teacher, config).model
        results.append(model.state_dict())
        assert all(t.device.type == "cpu" for t in model.state_dict().values())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_distill_refuses_a_bad_device_before_training(digits, digits_teacher):
    student = _student()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(ConfigError, match="device 'tpu'"):
        edgekd.distill(digits_teacher, student, digits[0], epochs=1, progress=False, device="tpu")
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_build_refuses_a_bad_device_before_any_work(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="device 'tpu'"):
        edgekd.build(dataset="digits", out_dir=out, search=False, epochs=1, device="tpu")
    assert not out.exists()


def test_the_device_is_recorded_where_the_run_is_described(digits, digits_teacher, tmp_path):
    edgekd.distill(digits_teacher, _student(), digits[0].subset(range(128)), digits[1], epochs=1, progress=False,
                   out_dir=tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["device"] == "cpu"
