"""Class lists and colour palettes of the data sets the project knows.

DELIVER's 25 classes are the project's default vocabulary (the synthetic world uses a subset of
them with the same ids), so a model trained on either speaks the same label ids.
"""

from __future__ import annotations

DELIVER_CLASSES: tuple[str, ...] = (
    "Building",
    "Fence",
    "Other",
    "Pedestrian",
    "Pole",
    "RoadLine",
    "Road",
    "SideWalk",
    "Vegetation",
    "Cars",
    "Wall",
    "TrafficSign",
    "Sky",
    "Ground",
    "Bridge",
    "RailTrack",
    "GroundRail",
    "TrafficLight",
    "Static",
    "Dynamic",
    "Water",
    "Terrain",
    "TwoWheeler",
    "Bus",
    "Truck",
)

# CARLA's semantic colours for the same classes (DELIVER is rendered in CARLA).
DELIVER_PALETTE: tuple[tuple[int, int, int], ...] = (
    (70, 70, 70),
    (100, 40, 40),
    (55, 90, 80),
    (220, 20, 60),
    (153, 153, 153),
    (157, 234, 50),
    (128, 64, 128),
    (244, 35, 232),
    (107, 142, 35),
    (0, 0, 142),
    (102, 102, 156),
    (220, 220, 0),
    (70, 130, 180),
    (81, 0, 81),
    (150, 100, 100),
    (230, 150, 140),
    (180, 165, 180),
    (250, 170, 30),
    (110, 190, 160),
    (170, 120, 50),
    (45, 60, 150),
    (145, 170, 100),
    (0, 0, 230),
    (0, 60, 100),
    (0, 0, 70),
)

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)

CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)

IGNORE_INDEX = 255


def class_id(name: str, classes: tuple[str, ...] = DELIVER_CLASSES) -> int:
    """Index of a class by name; an unknown name lists the valid ones."""
    try:
        return classes.index(name)
    except ValueError:
        raise ValueError(f"unknown class {name!r}; valid: {list(classes)}") from None
