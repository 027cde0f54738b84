"""anyseg_node: anymodal semantic segmentation that keeps going when sensors drop out.

Thin rclpy wiring: parameters (declared once from core.settings.PARAMETERS, unknown names
refused: :mod:`.parameters`) -> validated Settings -> :class:`~.segmentation.Segmentation`
configured (checkpoint loaded, checked, warmed up) and activated (subscriptions, timers, worker).
Runtime parameter changes are validated through the settings and applied from the next frame
set. Any startup failure is one line on stderr and exit code 2. The managed variant is
:mod:`.lifecycle_node` (``anyseg_lifecycle_node``).

    anyseg_node --ros-args --params-file config/segment.yaml
    ros2 launch anyseg_ros segment.launch.py [namespace:=robot1] [use_sim_time:=true]
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
import yaml
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node

from . import parameters
from .core.settings import SettingsError
from .pipeline import StartupError
from .segmentation import Segmentation

NODE_NAME = "anyseg_node"


def read_yaml(path: str) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def declare_checked(node: Node, argv: Sequence[str], read_only: bool = True) -> None:
    """Declare the parameters, refuse unknown names addressed to ``node``, warn once about the
    ones a key shared by every node brought."""
    parameters.declare(node, read_only)
    shared = parameters.check_unknown(node, argv, read_yaml)
    if shared:
        node.get_logger().warning(
            f"ignoring parameters {shared}: they reach {node.get_name()} only through a key "
            "shared by every node (/**), so they may be another node's"
        )


class SegmentationNode(Node):
    """The plain node: configured and active from construction until shutdown."""

    def __init__(self, argv: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        declare_checked(self, sys.argv if argv is None else argv)
        settings = parameters.settings_of(self, read_yaml)
        self.segmentation = seg = Segmentation(self)
        seg.configure(settings)
        parameters.ParameterChanges(self, read_yaml, apply=seg.apply, check=seg.check)
        seg.activate()
        self.get_logger().info(seg.describe())

    def close(self) -> None:
        self.segmentation.cleanup()


def run(
    prog: str,
    make: Callable[[Sequence[str]], Node],
    args: list[str] | None,
    spin: Callable[[Node], None] = rclpy.spin,
) -> int:
    """``main`` of both console scripts: exit 0 on shutdown, 2 with one line on a startup error
    (bad parameter, unknown name, unusable checkpoint, unparsable --params-file)."""
    try:
        rclpy.init(args=args)
    except Exception as e:  # e.g. an unparsable --params-file
        print(f"{prog}: error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    node = None
    try:
        node = make(sys.argv if args is None else args)
        spin(node)
    except (SettingsError, StartupError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        # SIGINT/SIGTERM shut the context down between the executor's own check and its next
        # wait set: the same shutdown, raised as "the given context is not valid".
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(args: list[str] | None = None) -> int:
    """Console script ``anyseg_node``."""
    return run(NODE_NAME, lambda argv: SegmentationNode(argv), args)


if __name__ == "__main__":
    sys.exit(main())
