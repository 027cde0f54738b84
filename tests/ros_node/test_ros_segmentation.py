"""The node's wiring between the worker and /diagnostics (anyseg_ros.segmentation) on a real rclpy
node in this process, with a stand-in segmentor whose inference fails on demand: failures are
counted with their reason, /diagnostics turns ERROR while they go on and OK once frames flow."""

from __future__ import annotations

import time
from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros.core.settings import Settings
from anyseg_ros.diagnostics import ERROR, OK

H, W = 24, 32


class FlakySegmentor:
    """Segmentor stand-in: predict raises ``failure`` while it is set."""

    def __init__(self) -> None:
        from anyseg_model.representations import DEFAULT_REPRESENTATIONS, Representation

        self.modalities = ("rgb",)
        self.representations = {"rgb": Representation(DEFAULT_REPRESENTATIONS["rgb"])}
        self.classes = tuple(range(3))
        self.palette = [(0, 0, 0)] * 3
        self.device = "cpu"
        self.failure: BaseException | None = None

    def warmup(self) -> None:
        pass

    def predict(self, arrays):
        if self.failure is not None:
            raise self.failure
        return NS(labels=np.zeros((H, W), np.uint8), modalities=tuple(arrays))


@pytest.fixture
def segmentation(monkeypatch):
    import rclpy

    from anyseg_ros.segmentation import Segmentation
    from anyseg_tools.localdds import loopback_env

    for k, v in loopback_env().items():
        monkeypatch.setenv(k, v)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("anyseg_node", context=ctx)
    seg = Segmentation(node)
    stub = FlakySegmentor()
    seg.configure(Settings.from_parameters({"checkpoint": "stub.pt", "modalities": ["rgb"]}), stub)
    seg.activate()
    yield seg, stub
    seg.cleanup()
    node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def _image(seg) -> NS:
    """An rgb8 image message (duck-typed) stamped with the node's clock now."""
    from anyseg_ros.core.decode import build_image

    now = seg.node.get_clock().now().nanoseconds
    header = NS(stamp=NS(sec=now // 10**9, nanosec=now % 10**9), frame_id="camera")
    return NS(header=header, **build_image(np.zeros((H, W, 3), np.uint8), "rgb8"))


def _until(pred, seg, timeout=10.0):
    """Feed an image every 50 ms (callback -> sync -> mailbox -> worker) until ``pred``."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        seg._on_sensor("rgb", _image(seg))
        seg._poll()
        time.sleep(0.05)


def _pipeline_status(seg):
    return next(s for s in seg.statuses() if s.name.endswith(": segmentation"))


def test_failing_inference_turns_diagnostics_to_error_and_back(segmentation):
    seg, stub = segmentation
    stub.failure = MemoryError("cannot allocate 1.9 GB")
    _until(lambda: seg.stats.inference_errors >= 5, seg)
    st = _pipeline_status(seg)
    assert st.level == ERROR and "inference failing:" in st.message
    assert "MemoryError: cannot allocate 1.9 GB" in st.message
    stub.failure = None  # frames flow again
    _until(lambda: seg.stats.frames >= 2, seg)
    st = _pipeline_status(seg)
    assert st.level == OK, st.message
    values = dict(st.values)
    assert int(values["inference_errors"]) >= 5 and values["inference_failing"] == "0"
