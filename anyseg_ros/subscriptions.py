"""The node's input subscriptions with rclpy: message types imported by name, QoS per kind.

sensor_msgs always exists; event_camera_msgs (EventPacket), dvs_msgs (EventArray) and tf2_msgs
(/tf, /tf_static) are imported when the system has them (they have no pip wheels). A
configuration that needs a missing one is refused at start-up with one line; without tf2_msgs
the LiDAR extrinsic must come from a parameter or calibration file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from . import transport
from .pipeline import InputTopic, Pipeline, StartupError, input_topics

# /tf as tf2_ros's listener subscribes; /tf_static latched (transient local), as broadcast.
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = QoSProfile(
    depth=100,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Event drivers publish ~/events best effort, depth 1000: a reliable subscriber gets nothing.
EVENTS_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)


def message_type(msgtype: str) -> Any:
    """'sensor_msgs/msg/Image' -> the rclpy class; ImportError when the package is missing."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def tf_available() -> bool:
    """Whether /tf can be subscribed to here (tf2_msgs is installed)."""
    try:
        message_type("tf2_msgs/msg/TFMessage")
    except ImportError:
        return False
    return True


def subscribe(
    node: Any,
    pipeline: Pipeline,
    modalities: tuple[str, ...],
    on_sensor: Callable[[str, Any], None],
    on_camera_info: Callable[[str, Any], None],
) -> tuple[dict[str, str], list[Any], dict[str, str]]:
    """Create every input subscription; returns the resolved topic name per modality, the
    subscriptions, and the resolved camera_info topic per camera."""
    s = pipeline.settings
    compressed = [
        m
        for m in modalities
        if s.transports.get(m, "raw") != "raw" and not (m == "event" and s.event_format != "frame")
    ]
    if compressed:
        try:
            transport.require_codecs()
        except transport.CodecUnavailable as e:
            raise StartupError(
                f"{compressed[0]}.transport {s.transports[compressed[0]]}: {e}"
            ) from None
    topics: dict[str, str] = {}
    cameras: dict[str, str] = {}
    subs: list[Any] = []
    for spec in input_topics(s, modalities):
        cls = _import(spec)
        if cls is None:
            continue
        if spec.kind == "sensor":
            m = spec.modality
            qos = EVENTS_QOS if spec.topic.endswith("events") else qos_profile_sensor_data
            sub = node.create_subscription(cls, spec.topic, lambda msg, m=m: on_sensor(m, msg), qos)
            topics[m] = sub.topic_name
        elif spec.kind == "camera_info":
            m = spec.modality
            sub = node.create_subscription(
                cls, spec.topic, lambda msg, m=m: on_camera_info(m, msg), qos_profile_sensor_data
            )
            cameras[m] = sub.topic_name
        else:
            static = spec.kind == "tf_static"
            sub = node.create_subscription(
                cls,
                spec.topic,
                lambda msg, static=static: pipeline.add_tf(msg, static),
                TF_STATIC_QOS if static else TF_QOS,
            )
        subs.append(sub)
    return topics, subs, cameras


def _import(spec: InputTopic) -> Any:
    try:
        return message_type(spec.msgtype)
    except ImportError:
        if spec.kind in ("tf", "tf_static"):
            return None  # registration then refuses what needs tf, with a clear message
        raise StartupError(
            f"{spec.topic} needs {spec.msgtype}, which is not installed on this system "
            f"(build {spec.msgtype.split('/')[0]} in your ROS 2 workspace)"
        ) from None
