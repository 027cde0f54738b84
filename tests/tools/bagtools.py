"""Small rosbag2 files written by hand, for replay/evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anyseg_tools.bag import BagWriter, camera_info_msg, header_msg, image_msg


def image(ns: int, arr: np.ndarray, encoding: str, frame: str = "camera"):
    return image_msg(header_msg(ns, frame), arr, encoding)


def camera_info(ns: int, w: int, h: int, f: float = 10.0):
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], float)
    return camera_info_msg(header_msg(ns, "camera"), w, h, K)


def write_bag(path: Path, messages: list[tuple[str, int, object]], storage: str = "mcap") -> Path:
    """``messages``: (topic, log time ns, rosbags message). Types come from the messages."""
    with BagWriter(path, storage) as bag:
        for topic, log_ns, msg in sorted(messages, key=lambda m: m[1]):
            bag.write(topic, log_ns, msg)
    return path
