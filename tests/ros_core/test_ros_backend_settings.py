"""The inference parameters (backend, onnx_dir, threads): defaults, values, one-line refusals."""

import pytest

from anyseg_ros.core.settings import PARAMETER_NAMES, Settings, SettingsError

BASE = {"checkpoint": "model.pt", "modalities": ["rgb"]}


def test_defaults_and_values():
    s = Settings.from_parameters(BASE)
    assert (s.backend, s.onnx_dir, s.threads) == ("torch", "", 0)
    s = Settings.from_parameters(
        {**BASE, "backend": "onnxruntime", "onnx_dir": " runs/onnx ", "threads": 3}
    )
    assert (s.backend, s.onnx_dir, s.threads) == ("onnxruntime", "runs/onnx", 3)
    # next to device in the table, so a user finds them together
    i = PARAMETER_NAMES.index("device")
    assert PARAMETER_NAMES[i + 1 : i + 4] == ("backend", "onnx_dir", "threads")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"backend": "tensorrt"}, "'backend' = 'tensorrt': allowed: torch, onnxruntime"),
        ({"onnx_dir": "runs/onnx"}, "'onnx_dir' = 'runs/onnx': is used by backend onnxruntime"),
        ({"threads": -1}, "'threads' = -1: must be an integer 0..256"),
        ({"threads": 1.5}, "'threads' = 1.5"),
        ({"threads": True}, "'threads' = True"),
    ],
)
def test_refusals_name_the_parameter(values, message):
    with pytest.raises(SettingsError) as e:
        Settings.from_parameters({**BASE, **values})
    assert message in str(e.value) and "\n" not in str(e.value)
