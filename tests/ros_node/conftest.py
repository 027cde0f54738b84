from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained anyseg_tiny checkpoint for all four modalities (fast on CPU)."""
    from anyseg_model import create_model, save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "anyseg_tiny.pt"
    save_checkpoint(
        create_model("anyseg_tiny", num_classes=25, modalities=("rgb", "depth", "event", "lidar")),
        path,
    )
    return path


class RosClient:
    """An rclpy node of the test's own (loopback DDS, its own context and spinning thread) to
    drive the node under test: publish /clock, set parameters, change lifecycle states."""

    def __init__(self) -> None:
        import threading

        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("anyseg_test_client", context=self.ctx)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._clock: threading.Thread | None = None
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def call(self, srv_type, name: str, request, timeout: float = 15.0):
        """Call a service and wait for its response (the executor thread completes it)."""
        import threading

        client = self.node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"no service {name}"
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda f: done.set())
            assert done.wait(timeout), f"{name} did not answer"
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, node: str, **values):
        """``SetParametersResult`` per value, in order (names with dots: pass a dict)."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        return self.call(SetParameters, f"{node}/set_parameters", request).results

    def change_state(self, node: str, transition: str) -> bool:
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.label = transition
        return self.call(ChangeState, f"{node}/change_state", request).success

    def state(self, node: str) -> str:
        from lifecycle_msgs.srv import GetState

        return self.call(GetState, f"{node}/get_state", GetState.Request()).current_state.label

    def start_clock(self, period_s: float = 0.01) -> None:
        """Publish /clock (rosgraph_msgs/Clock) with the wall time, as a simulator would."""
        import threading
        import time

        from rosgraph_msgs.msg import Clock

        pub = self.node.create_publisher(Clock, "/clock", 10)

        def tick() -> None:
            while not self._stop.wait(period_s):
                msg = Clock()
                now = time.time_ns()
                msg.clock.sec, msg.clock.nanosec = now // 10**9, now % 10**9
                pub.publish(msg)

        self._clock = threading.Thread(target=tick, daemon=True)
        self._clock.start()

    def close(self) -> None:
        import rclpy

        self._stop.set()
        if self._clock is not None:
            self._clock.join(timeout=5.0)  # it must not publish on a destroyed node
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.ctx)
        self._spinner.join(timeout=5.0)


@pytest.fixture
def ros_client(monkeypatch):
    """A :class:`RosClient` on the same loopback-only DDS domain as the node processes."""
    from anyseg_tools.localdds import loopback_env

    for k, v in loopback_env().items():
        monkeypatch.setenv(k, v)
    client = RosClient()
    yield client
    client.close()
