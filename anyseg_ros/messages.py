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
from sensor_msgs.msg import Image, PointCloud2, PointField

from .diagnostics import Status


def image(header: Any, contents: dict[str, Any]) -> Image:
    """sensor_msgs/Image from :func:`~anyseg_ros.core.decode.build_image` kwargs."""
    return Image(header=header, **contents)


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
