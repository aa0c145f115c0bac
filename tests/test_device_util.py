"""The test device comes from VGF_TEST_DEVICE and fails by name, so a GPU check never passes on the CPU."""

import pytest
import torch
from device_util import TEST_DEVICE_ENV, selected_device


def test_the_default_test_device_is_the_cpu(monkeypatch):
    monkeypatch.delenv(TEST_DEVICE_ENV, raising=False)
    assert selected_device() == torch.device("cpu")


@pytest.mark.parametrize(("name", "message"), [("gpu0", "is not a torch device"), ("meta", "cpu and cuda")])
def test_an_unknown_test_device_is_named(monkeypatch, name, message):
    monkeypatch.setenv(TEST_DEVICE_ENV, name)
    with pytest.raises(RuntimeError, match=f"{TEST_DEVICE_ENV}='{name}'.*{message}"):
        selected_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_fails_instead_of_running_on_the_cpu(monkeypatch):
    monkeypatch.setenv(TEST_DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match="torch sees no CUDA device"):
        selected_device()
