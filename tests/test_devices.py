"""Device and dtype choice. There is no GPU here, so CUDA and MPS are described by a stand-in torch module
that answers the same questions real torch does; the CPU path uses real torch."""

import os
from types import SimpleNamespace

import pytest
import torch

from minicpmv_app import devices
from minicpmv_app.errors import DeviceError


def fake_torch(cuda=0, bf16=True, mps=False):
    return SimpleNamespace(
        __version__=torch.__version__,
        version=SimpleNamespace(cuda="12.4" if cuda else None),
        cuda=SimpleNamespace(is_available=lambda: cuda > 0, device_count=lambda: cuda, is_bf16_supported=lambda: bf16),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)),
        bfloat16=torch.bfloat16,
        float16=torch.float16,
        float32=torch.float32,
    )


def test_auto_prefers_cuda_then_mps_then_cpu():
    assert devices.resolve_device("auto", torch_module=fake_torch(cuda=1, mps=True)) == "cuda"
    assert devices.resolve_device("auto", torch_module=fake_torch(mps=True)) == "mps"
    assert devices.resolve_device("auto", torch_module=fake_torch()) == "cpu"


def test_auto_on_this_machine_is_cpu_in_fp32():
    place = devices.placement("auto")
    assert (place.device, place.dtype) == ("cpu", torch.float32)


def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="--device cpu"):
        devices.resolve_device("cuda", torch_module=fake_torch())


def test_missing_gpu_index_is_refused():
    with pytest.raises(DeviceError, match="1 GPU"):
        devices.resolve_device("cuda:3", torch_module=fake_torch(cuda=1))


def test_mps_sets_the_cpu_fallback(monkeypatch):
    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)
    assert devices.resolve_device("mps", torch_module=fake_torch(mps=True)) == "mps"
    assert os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] == "1"


def test_dtype_follows_the_hardware():
    assert devices.resolve_dtype("cuda", torch_module=fake_torch(cuda=1, bf16=True)) is torch.bfloat16
    assert devices.resolve_dtype("cuda", torch_module=fake_torch(cuda=1, bf16=False)) is torch.float16
    assert devices.resolve_dtype("mps", torch_module=fake_torch(mps=True)) is torch.float16
    assert devices.resolve_dtype("cpu") is torch.float32
    assert devices.resolve_dtype("cpu", "bf16") is torch.bfloat16


def test_bf16_on_an_old_gpu_is_refused():
    with pytest.raises(DeviceError, match="fp16"):
        devices.resolve_dtype("cuda", "bf16", torch_module=fake_torch(cuda=1, bf16=False))


def test_several_gpus_spread_with_accelerate():
    place = devices.placement("cuda", torch_module=fake_torch(cuda=4))
    assert place.device_map == "auto" and place.multi_gpu
    single = devices.placement("cuda:1", torch_module=fake_torch(cuda=4))
    assert single.device_map == "cuda:1"


@pytest.mark.parametrize("bad", ["tpu", "gpu0"])
def test_unknown_device(bad):
    with pytest.raises(DeviceError, match="auto, cuda, mps, cpu"):
        devices.resolve_device(bad)


def test_unknown_dtype():
    with pytest.raises(DeviceError, match="bf16"):
        devices.resolve_dtype("cpu", "int3")
