"""The node's outputs as rclpy messages (the only module besides node.py that imports them).

:class:`~anyseg_ros.pipeline.Pipeline` builds message contents as plain constructor kwargs and
:mod:`anyseg_ros.diagnostics` builds statuses as plain data; this turns them into messages.
The generated constructors copy a ``data`` passed to them twice (``array.array('B', data)``,
then the property setter again unless fields are checked): 0.3-1.4 ms for a 2.4 MB labelled
cloud. :func:`_with_data` hands the buffer over without a copy.
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from .core.decode import stamp_parts
from .diagnostics import Status
from .pipeline import OutputCamera

IDENTITY_3X3 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
# With checked fields the data setter keeps an array.array('B') as it is; older generated
# classes have no such flag and always keep it. Every message here comes from the same
# generator, so one class tells.
_KEEP_DATA = {"check_fields": True} if "_check_fields" in Image.__slots__ else {}


def _with_data(cls: Any, data: Any, **fields: Any) -> Any:
    """A message of ``cls`` whose uint8[] ``data`` is the given buffer itself when it is an
    array.array('B') (what :mod:`anyseg_ros.core.decode` builds), else one copy of it."""
    if not (isinstance(data, array.array) and data.typecode == "B"):
        data = array.array("B", data)  # the checked setter would test each byte in Python
    msg = cls(**_KEEP_DATA, **fields)
    msg.data = data
    return msg


def header(stamp_ns: int, frame_id: str) -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = stamp_parts(stamp_ns)
    return h


def image(header: Any, contents: dict[str, Any]) -> Image:
    """sensor_msgs/Image from :func:`~anyseg_ros.core.decode.build_image` kwargs."""
    return _with_data(Image, header=header, **contents)


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
    return _with_data(PointCloud2, header=header, **{**contents, "fields": fields})


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
