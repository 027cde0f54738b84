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


def modality_of(topic: str) -> str | None:
    """The modality whose input topic this is (absolute or relative name), else None."""
    name = normalize(topic)
    return next((m for m, t in INPUT_TOPICS.items() if normalize(t) == name), None)
