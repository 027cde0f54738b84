"""anyseg_lifecycle_node: the same segmentation as a managed (lifecycle) node.

Same parameters, same node name, same topics as ``anyseg_node``; driven through
``<node>/change_state`` (or the launch file's ``lifecycle:=true autostart:=true``):

- configure: validates the settings and loads + warms up the model. A failure (bad parameter,
  unusable checkpoint) is logged with its reason and returns FAILURE: the node stays
  unconfigured and alive, so the parameter can be fixed and configure tried again.
- activate: starts consuming and publishing; deactivate stops both and keeps the model.
- cleanup: frees the model (and GPU memory); shutdown ends the process.

While configured, the parameters that configure loads (checkpoint, device, modalities,
calibration_file) are refused; the live ones apply from the next frame set as in the plain node.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

import rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from . import parameters
from .core.settings import SettingsError
from .node import NODE_NAME, declare_checked, read_yaml, run
from .pipeline import StartupError
from .segmentation import Segmentation

OK, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class LifecycleSegmentationNode(LifecycleNode):
    def __init__(self, argv: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        declare_checked(self, sys.argv if argv is None else argv, read_only=False)
        self.segmentation = seg = Segmentation(self, lifecycle=True)
        self.finished = threading.Event()
        parameters.ParameterChanges(
            self, read_yaml, apply=seg.apply, frozen=lambda: seg.configured, check=seg.check
        )

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = parameters.settings_of(self, read_yaml)
            self.segmentation.configure(settings)
        except (SettingsError, StartupError) as e:
            self.get_logger().error(f"configure failed: {e}")
            self.segmentation.cleanup()
            return FAILURE
        self.get_logger().info(f"configured: {self.segmentation.describe()}")
        return OK

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        self.segmentation.activate()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.segmentation.deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.segmentation.cleanup()
        return OK

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.segmentation.cleanup()
        self.finished.set()
        return OK

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error while {state.label}: model freed, back to unconfigured")
        self.segmentation.cleanup()
        return OK

    def close(self) -> None:
        self.segmentation.cleanup()


def _spin_until_finalized(node: LifecycleSegmentationNode) -> None:
    while rclpy.ok() and not node.finished.is_set():
        rclpy.spin_once(node, timeout_sec=0.1)


def main(args: list[str] | None = None) -> int:
    """Console script ``anyseg_lifecycle_node``: exit 0 after shutdown, 2 on a bad parameter."""
    return run(
        "anyseg_lifecycle_node",
        lambda argv: LifecycleSegmentationNode(argv),
        args,
        spin=_spin_until_finalized,
    )


if __name__ == "__main__":
    sys.exit(main())
