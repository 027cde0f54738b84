"""The node's topic names: the one place they are spelled.

Names are relative, so a namespace (``__ns:=/robot1``) and remaps apply to them. Bags store
absolute names, with or without the leading slash depending on the recorder; every comparison
goes through :func:`normalize`, so ``rgb/image``, ``/rgb/image`` and ``rgb/image/`` are one topic.
"""

from __future__ import annotations

MODALITIES: tuple[str, ...] = ("rgb", "depth", "event", "lidar")  # == anyseg_model.MODALITIES

INPUT_TOPICS: dict[str, str] = {
    "rgb": "rgb/image",
    "depth": "depth/image",
    "event": "event/image",
    "lidar": "lidar/points",
}
CAMERA_INFO_TOPIC = "rgb/camera_info"
# Each camera's own calibration and frame_id (depth and event are registered onto RGB's grid).
CAMERA_INFO_TOPICS: dict[str, str] = {
    "rgb": CAMERA_INFO_TOPIC,
    "depth": "depth/camera_info",
    "event": "event/camera_info",
}
# Event streams (event.format event_packet / event_array), as the drivers' ~/events.
EVENTS_TOPIC = "event/events"
# image_transport's transports publish on <base>/<transport name>.
TRANSPORT_SUFFIX = {"raw": "", "compressed": "/compressed", "compressedDepth": "/compressedDepth"}
TF_TOPIC, TF_STATIC_TOPIC = "/tf", "/tf_static"
OUTPUT_TOPICS: dict[str, str] = {
    "labels": "segmentation/labels",
    "color": "segmentation/color",
    "points": "segmentation/points",
    "info": "segmentation/info",
    "camera_info": "segmentation/camera_info",  # the output camera (same header as the labels)
}
DIAGNOSTICS_TOPIC = "/diagnostics"
# Not an input of the node: what the synthetic world records beside the sensors, for scoring.
LABELS_TOPIC = "ground_truth/labels"


def normalize(topic: str) -> str:
    """One spelling per topic: absolute, no trailing slash (``rgb/image`` -> ``/rgb/image``)."""
    return "/" + topic.strip("/")


def transport_topic(modality: str, transport: str = "raw") -> str:
    """The topic a modality arrives on with an image transport (``rgb/image/compressed``)."""
    return INPUT_TOPICS[modality] + TRANSPORT_SUFFIX[transport]


def modality_of(topic: str) -> str | None:
    """The modality whose input this topic carries (any transport, the event stream; absolute
    or relative name), else None."""
    name = normalize(topic)
    for m, t in INPUT_TOPICS.items():
        if any(normalize(t + suffix) == name for suffix in TRANSPORT_SUFFIX.values()):
            return m
    return "event" if name == normalize(EVENTS_TOPIC) else None
