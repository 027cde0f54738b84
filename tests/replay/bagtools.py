"""Write small rosbag2 files by hand with rosbags, for replay/evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from anyseg_ros.bag import typestore


def _header(ns: int, frame: str):
    T = typestore().types
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame
    )


def image(ns: int, arr: np.ndarray, encoding: str, frame: str = "camera"):
    T = typestore().types
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    return T["sensor_msgs/msg/Image"](header=_header(ns, frame), height=h, width=w, encoding=encoding,
                                      is_bigendian=0, step=arr.strides[0], data=arr.view(np.uint8).reshape(-1))  # fmt: skip


def camera_info(ns: int, w: int, h: int, f: float = 10.0):
    T = typestore().types
    k = np.array([f, 0, w / 2, 0, f, h / 2, 0, 0, 1], float)
    p = np.array([f, 0, w / 2, 0, 0, f, h / 2, 0, 0, 0, 1, 0], float)
    roi = T["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return T["sensor_msgs/msg/CameraInfo"](header=_header(ns, "camera"), height=h, width=w, distortion_model="plumb_bob",
                                           d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=p, binning_x=0,
                                           binning_y=0, roi=roi)  # fmt: skip


def write_bag(path: Path, messages: list[tuple[str, int, object]], storage: str = "mcap") -> Path:
    """``messages``: (topic, log time ns, rosbags message). Types come from the messages."""
    ts = typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    conns = {}
    with Writer(path, version=9, storage_plugin=plugin) as w:
        for topic, log_ns, msg in sorted(messages, key=lambda m: m[1]):
            msgtype = msg.__msgtype__
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=ts)
            w.write(conns[topic], log_ns, ts.serialize_cdr(msg, msgtype))
    return path
