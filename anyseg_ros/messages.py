"""The node's outputs as rclpy messages (the only module besides node.py that imports them).

:class:`~anyseg_ros.pipeline.Pipeline` builds message contents as plain constructor kwargs and
:mod:`anyseg_ros.diagnostics` builds statuses as plain data; this turns them into messages.
Passing ``data`` to the constructor matters: assigning it through the property afterwards is
orders of magnitude slower (see :mod:`anyseg_ros.core.decode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from .core.decode import stamp_parts
from .diagnostics import Status
from .pipeline import OutputCamera

IDENTITY_3X3 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def header(stamp_ns: int, frame_id: str) -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = stamp_parts(stamp_ns)
    return h


def image(header: Any, contents: dict[str, Any]) -> Image:
    """sensor_msgs/Image from :func:`~anyseg_ros.core.decode.build_image` kwargs."""
    return Image(header=header, **contents)


def camera_info(header: Any, cam: OutputCamera) -> CameraInfo:
    """sensor_msgs/CameraInfo of the output camera (K all zeros while it is unknown, which is
    how ROS marks an uncalibrated camera); P = [K | 0], R = identity: the labels are on the
    image's own grid, not rectified."""
    K = [0.0] * 9 if cam.K is None else [float(v) for v in cam.K.reshape(-1)]
    return CameraInfo(
        header=header,
        width=cam.width,
        height=cam.height,
        distortion_model=cam.distortion_model,
        d=[] if cam.D is None else [float(v) for v in cam.D],
        k=K,
        r=IDENTITY_3X3,
        p=[*K[0:3], 0.0, *K[3:6], 0.0, *K[6:9], 0.0],
    )


def pointcloud(header: Any, contents: dict[str, Any]) -> PointCloud2:
    """sensor_msgs/PointCloud2 from :func:`~anyseg_ros.core.decode.build_pointcloud` kwargs."""
    fields = [PointField(**f._asdict()) for f in contents["fields"]]
    return PointCloud2(header=header, **{**contents, "fields": fields})


def diagnostic_array(statuses: Sequence[Status], stamp: Any) -> DiagnosticArray:
    """diagnostic_msgs/DiagnosticArray of :func:`~anyseg_ros.diagnostics.statuses`."""
    msg = DiagnosticArray(
        status=[
            DiagnosticStatus(
                level=bytes([st.level]),
                name=st.name,
                message=st.message,
                hardware_id=st.hardware_id,
                values=[KeyValue(key=k, value=v) for k, v in st.values],
            )
            for st in statuses
        ]
    )
    msg.header.stamp = stamp
    return msg
