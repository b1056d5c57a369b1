import pytest
import torch

from digitrec.device import resolve_device, use_inference_threads
from digitrec.errors import ConfigError


def test_auto_picks_what_this_machine_has():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name,message", [("tpu", "unknown device"), ("gpu0", "unknown device"), ("meta", "unsupported")])
def test_unknown_devices_are_config_errors(name, message):
    with pytest.raises(ConfigError, match=message):
        resolve_device(name)


def test_missing_accelerators_are_config_errors():
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ConfigError, match="CUDA is not available"):
                resolve_device(name)
    if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
        with pytest.raises(ConfigError, match="MPS is not available"):
            resolve_device("mps")


def test_inference_runs_on_one_thread_unless_told_otherwise(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("DIGITREC_THREADS", raising=False)
        assert use_inference_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("DIGITREC_THREADS", "2")
        assert use_inference_threads() == 2 and torch.get_num_threads() == 2
        assert use_inference_threads(1) == 1 and torch.get_num_threads() == 1
        for bad in ("two", "0"):
            monkeypatch.setenv("DIGITREC_THREADS", bad)
            with pytest.raises(ConfigError, match="DIGITREC_THREADS|at least 1"):
                use_inference_threads()
    finally:
        torch.set_num_threads(before)
