"""Play a rosbag2 recording into live ROS 2 topics, dropping sensors over time windows.

    anyseg-replay BAG [--rate R] [--loop] [--drop lidar:5-10 ...] [--no-restamp | --clock]

Unlike ``ros2 bag play`` (not deterministic, drops large messages: rosbag2 #1254, #1152) every
message is deserialised before playback starts, then published at ``log time / rate`` after the
start. By default header stamps are shifted onto the wall clock (``restamp``), so latency
measured by the node (now - header.stamp) is real and a looped bag never steps back in time; the
ground-truth labels get the same shift, so they still match their camera frames by stamp.
``--clock`` instead publishes /clock (rosgraph_msgs/Clock) with the bag's time (the recorder's
log time, as ``ros2 bag play --clock``: before each message and every 10 ms between them) and
keeps the recorded header stamps, for nodes running with ``use_sim_time``; a loop steps the
clock back to the bag's start. Sensor inputs are published best effort (as drivers do);
everything else reliable.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anyseg_ros.core.decode import stamp_ns, stamp_parts
from anyseg_ros.core.topics import modality_of

from .bag import BagContents, DropWindow, dropped, parse_drop, read_bag

CLOCK_TOPIC = "/clock"
CLOCK_PERIOD_S = 0.01  # /clock ticks between messages
CLOCK_LEAD_S = 0.3  # /clock at the bag's start this long before the first message


@dataclass
class ReplayStats:
    published: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    lag_ms_max: float = 0.0  # how far behind schedule the worst publish was


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


class Replayer:
    """Publishes a bag's messages on ``node`` with the bag's timing, honouring drop windows."""

    def __init__(
        self,
        node,
        bag: BagContents,
        rate: float = 1.0,
        loop: bool = False,
        drops: Sequence[DropWindow] = (),
        restamp: bool = True,
        clock: bool = False,
    ) -> None:
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from rclpy.serialization import deserialize_message

        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        records = [r for r in bag.records if not (clock and r.topic == CLOCK_TOPIC)]
        if not records:
            raise ValueError(f"bag {bag.path} has no messages")
        self.rate, self.loop, self.drops = rate, loop, list(drops)
        self.restamp = restamp and not clock  # sim time: the recorded stamps are on the clock
        self.start_ns = records[0].log_ns
        self.duration_s = (records[-1].log_ns - self.start_ns) * 1e-9
        self.publishers = {}
        # Types whose package this system lacks (event_camera_msgs, dvs_msgs: no pip wheels)
        # cannot be published: those topics are left out and named.
        self.unpublishable: dict[str, str] = {}
        for topic, msgtype in {r.topic: r.msgtype for r in records}.items():
            qos = qos_profile_sensor_data if modality_of(topic) else QoSProfile(depth=10)
            try:
                cls = message_class(msgtype)
            except ImportError:
                self.unpublishable[topic] = msgtype
                continue
            self.publishers[topic] = node.create_publisher(cls, topic, qos)
        self.clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self._clock_msg = Clock
            self.clock_pub = node.create_publisher(Clock, CLOCK_TOPIC, qos_profile_sensor_data)
        self._bag_now: int | None = None  # the bag time last published on /clock
        # Deserialise up front so playback timing does not depend on message size.
        self.items = []
        for r in records:
            if r.topic in self.unpublishable:
                continue
            msg = deserialize_message(r.raw, message_class(r.msgtype))
            orig = stamp_ns(msg.header) if hasattr(msg, "header") else r.log_ns
            self.items.append((r.topic, (r.log_ns - self.start_ns) * 1e-9, msg, orig))
        self.stats = ReplayStats()
        self.stamp0: int | None = None  # wall-clock stamp of the bag's start, set by run()

    def bag_now_ns(self) -> int | None:
        """The bag time now on /clock (``--clock``), None before the first tick."""
        return self._bag_now

    def _tick_clock(self, bag_ns: int) -> None:
        if self.clock_pub is not None:
            msg = self._clock_msg()
            msg.clock.sec, msg.clock.nanosec = stamp_parts(bag_ns)
            self.clock_pub.publish(msg)
            self._bag_now = bag_ns

    def _wait_until(self, due: float, stop: threading.Event, bag_at_due_ns: int) -> bool:
        """Wait until monotonic ``due``; with a clock, tick it every 10 ms on the way (the bag
        time advances with the wall clock x rate). True if ``stop`` was set."""
        if self.clock_pub is None:
            return stop.wait(max(0.0, due - time.monotonic()))
        while (left := due - time.monotonic()) > 0:
            self._tick_clock(bag_at_due_ns - round(left * self.rate * 1e9))
            if stop.wait(min(left, CLOCK_PERIOD_S)):
                return True
        self._tick_clock(bag_at_due_ns)
        return stop.is_set()

    def to_bag_stamp(self, replay_ns: int) -> int:
        """The recorded stamp of a message published (first loop) with stamp ``replay_ns``."""
        if not self.restamp or self.stamp0 is None:
            return replay_ns
        return self.start_ns + round((replay_ns - self.stamp0) * self.rate)

    def run(
        self, stop: threading.Event | None = None, on_tick: Callable[[float], None] | None = None
    ) -> ReplayStats:
        """Publish until the bag ends (or forever with ``loop``) or ``stop`` is set.

        ``on_tick(bag_time_s)`` is called before each message, e.g. for a console line.
        """
        stop = stop or threading.Event()
        if self.clock_pub is not None:
            # The clock first, so the node's clock runs before the first sensor message.
            lead = time.monotonic() + CLOCK_LEAD_S
            while time.monotonic() < lead and not stop.wait(CLOCK_PERIOD_S):
                self._tick_clock(self.start_ns)
        wall0 = time.monotonic()
        self.stamp0 = stamp0 = time.time_ns()
        offset_s = 0.0  # bag time at which the current loop started, in replay time
        while not stop.is_set():
            for topic, t_bag, msg, orig in self.items:
                due = wall0 + (offset_s + t_bag) / self.rate
                if self._wait_until(due, stop, self.start_ns + round(t_bag * 1e9)):
                    return self.stats
                self.stats.lag_ms_max = max(self.stats.lag_ms_max, (time.monotonic() - due) * 1e3)
                if on_tick:
                    on_tick(t_bag)
                modality = modality_of(topic)
                if modality and dropped(self.drops, modality, t_bag):
                    self.stats.dropped[topic] = self.stats.dropped.get(topic, 0) + 1
                    continue
                if self.restamp and hasattr(msg, "header"):
                    # Shift (and scale) the recorded stamp, not the log time: messages that shared
                    # a stamp (an image and its labels) still share one after restamping.
                    # Integers first: a float of an epoch stamp in ns has ~256 ns resolution.
                    replay_ns = stamp0 + round(
                        (round(offset_s * 1e9) + (orig - self.start_ns)) / self.rate
                    )
                    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_parts(replay_ns)
                self.publishers[topic].publish(msg)
                self.stats.published[topic] = self.stats.published.get(topic, 0) + 1
            if not self.loop:
                break
            self.stats.loops += 1
            # The next loop starts one mean message period after the last message.
            offset_s += self.duration_s + self.duration_s / max(1, len(self.items) - 1)
        return self.stats


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``anyseg-replay``."""
    ap = argparse.ArgumentParser(prog="anyseg-replay", description=__doc__.split("\n\n")[0])
    ap.add_argument("bag", help="rosbag2 folder or .mcap/.db3 file")
    ap.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    ap.add_argument("--loop", action="store_true", help="play again from the start when done")
    ap.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="MODALITY:START-END",
        help="silence a sensor from START to END seconds after the bag's start (repeatable)",
    )
    stamps = ap.add_mutually_exclusive_group()
    stamps.add_argument(
        "--no-restamp",
        dest="restamp",
        action="store_false",
        help="publish the recorded header stamps",
    )
    stamps.add_argument(
        "--clock",
        action="store_true",
        help="publish /clock from the bag's time and keep the recorded stamps (use_sim_time)",
    )
    args = ap.parse_args(argv)
    try:
        drops = [parse_drop(d) for d in args.drop]
        bag = read_bag(args.bag)
    except (ValueError, RuntimeError) as e:
        print(f"anyseg-replay: {e}", file=sys.stderr)
        return 2
    if bag.error:
        print(
            f"anyseg-replay: warning: {bag.error}; "
            f"playing the {len(bag.records)} readable messages",
            file=sys.stderr,
        )

    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init()
    try:
        node = rclpy.create_node("anyseg_replay")
        replayer = Replayer(node, bag, args.rate, args.loop, drops, args.restamp, args.clock)
        for topic, msgtype in replayer.unpublishable.items():
            print(f"anyseg-replay: warning: {topic} not played: {msgtype} is not installed")
        print(
            f"anyseg-replay: {len(bag.records)} messages, {replayer.duration_s:.1f} s, "
            f"rate {args.rate}",
            flush=True,
        )
        stats = replayer.run()
        print(
            f"anyseg-replay: published {sum(stats.published.values())}, "
            f"dropped {sum(stats.dropped.values())}, "
            f"max lag {stats.lag_ms_max:.1f} ms",
            flush=True,
        )
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as e:
        print(f"anyseg-replay: {e}", file=sys.stderr)
        return 2
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
