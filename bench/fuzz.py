"""Hostile input, at length: figures for BENCHMARKS.md (issue 14).

    python bench/fuzz.py offline --cases 10000            # every kind of anyseg_tools.fuzz
    python bench/fuzz.py live --seconds 20 --rate 200     # malformed messages into the node

offline: ``--cases`` mutated messages of every kind through decode, frame assembly and the
model's preprocessing (``anyseg_tools.fuzz``), seeded: per kind the cases, accepted, refused
(and the most common reasons), accepted-but-wrong (network input non-finite or misshapen) and
crashes (any other exception), plus this process's peak resident memory.

live: the real node (untrained anyseg_tiny on the CPU) fed by the synthetic rig, first alone,
then with a second publisher sending mutated messages of every ROS-typed kind on the node's own
topics at ``--rate`` messages/s, then alone again: labels per second before / during / after,
the node's peak resident memory before the fuzzer starts and at the end, whether it stayed up,
and its decode-error counters from /diagnostics. Mutations that the ROS message types cannot
carry (a negative height, a width over 2^32) are not sent: DDS could not deliver them either.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from anyseg_tools import fuzz

# kinds a ROS publisher can send here (EventPacket has no typesupport on this system)
LIVE_KINDS = {
    "rgb8": "rgb/image",
    "rgba8": "rgb/image",
    "yuv422": "rgb/image",
    "bayer_rggb8": "rgb/image",
    "depth_16UC1": "depth/image",
    "depth_32FC1": "depth/image",
    "event_mono8": "event/image",
    "event_32FC1": "event/image",
    "cloud_xyzi": "lidar/points",
    "cloud_ouster": "lidar/points",
    "cloud_hesai": "lidar/points",
    "camera_info": "rgb/camera_info",
}


def offline(args: argparse.Namespace) -> None:
    print(
        f"`python bench/fuzz.py offline --cases {args.cases} --seed {args.seed}` "
        f"({len(fuzz.KINDS)} kinds)\n"
    )
    header = "| kind | cases | accepted | refused | wrong | crashes | top refusals | s |"
    print(header + "\n|---|---:|---:|---:|---:|---:|---|---:|")
    total = {"cases": 0, "wrong": 0, "crash": 0}
    for kind in fuzz.KINDS:
        t = time.perf_counter()
        r = fuzz.run(kind, args.cases, args.seed)
        top = ", ".join(f"{k} {n}" for k, n in r.refused.most_common(3))
        refused = r.counts["refused"] + r.counts["refused_later"]
        print(
            f"| {kind} | {r.cases} | {r.counts['accepted']} | {refused} | {r.counts['wrong']} "
            f"| {r.counts['crash']} | {top} | {time.perf_counter() - t:.1f} |",
            flush=True,
        )
        total["cases"] += r.cases
        total["wrong"] += r.counts["wrong"]
        total["crash"] += r.counts["crash"]
        for line in r.wrong + r.crashes:
            print(f"    {kind}: {line}", file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{total['cases']} cases, {total['wrong']} accepted but wrong, {total['crash']} "
        f"crashes; peak resident memory of the fuzzing process {peak:.0f} MB"
    )


def _ros_message(kind: str, msg, stamp_ns: int):
    """The rclpy message of a fuzz stand-in (None if its values do not fit the ROS types)."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField, RegionOfInterest
    from std_msgs.msg import Header

    from anyseg_ros.core.decode import stamp_parts

    sec, nsec = stamp_parts(stamp_ns)
    h = Header(frame_id=msg.header.frame_id)
    h.stamp.sec, h.stamp.nanosec = sec, min(max(int(msg.header.stamp.nanosec), 0), 999_999_999)
    fields = {k: v for k, v in vars(msg).items() if k != "header"}
    try:
        if kind == "camera_info":
            roi = RegionOfInterest(**vars(fields.pop("roi")))
            msg = CameraInfo(header=h, roi=roi, **fields)
        elif kind.startswith("cloud"):
            pf = [PointField(**vars(f)) for f in fields.pop("fields")]
            msg = PointCloud2(header=h, fields=pf, **fields)
        else:
            msg = Image(header=h, **fields)
        serialize_message(msg)  # values outside the wire types fail here, not in the publisher
    except Exception:
        return None
    return msg


def _publisher(stop: threading.Event, rate: float, counts: dict[str, int]) -> None:
    """Mutated messages of every LIVE_KINDS kind, round robin, at ``rate`` per second."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data

    rclpy.init()
    node = rclpy.create_node("anyseg_fuzzer")
    try:
        rngs = {k: np.random.default_rng([1, i]) for i, k in enumerate(LIVE_KINDS)}
        bases = {k: fuzz.KINDS[k][2](rngs[k]) for k in LIVE_KINDS}
        pubs = {}
        for kind, topic in LIVE_KINDS.items():
            msg = _ros_message(kind, bases[kind], 0)
            if topic not in pubs:
                pubs[topic] = node.create_publisher(type(msg), topic, qos_profile_sensor_data)
        kinds = list(LIVE_KINDS)
        k = 0
        while not stop.is_set():
            kind = kinds[k % len(kinds)]
            k += 1
            msg = _ros_message(kind, fuzz.mutate(bases[kind], rngs[kind]), time.time_ns())
            if msg is None:
                counts["unrepresentable"] = counts.get("unrepresentable", 0) + 1
            else:
                pubs[LIVE_KINDS[kind]].publish(msg)
                counts["sent"] = counts.get("sent", 0) + 1
            stop.wait(1.0 / rate)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def live(args: argparse.Namespace) -> None:
    from anyseg_model import create_model, save_checkpoint
    from anyseg_sim.rig import lidar_extrinsic
    from anyseg_tools.harness import Watcher, node_command, peak_rss_mb, rig_command
    from anyseg_tools.localdds import child, loopback_env
    from anyseg_tools.params import write_params

    tmp = Path(tempfile.mkdtemp(prefix="anyseg_fuzz_"))
    ckpt = save_checkpoint(create_model("anyseg_tiny", num_classes=25), tmp / "tiny.pt")
    values = {"checkpoint": str(ckpt), "device": "cpu", "lidar_extrinsic": lidar_extrinsic()}
    params = write_params(tmp / "params.yaml", values)
    env = loopback_env()
    os.environ.update(env)  # the fuzzing publisher in this process joins the same domain
    rates = "rgb=10,depth=10,event=10,lidar=5"
    node_log = (tmp / "node.log").open("w")
    with (
        child(node_command(params), env, stdout=node_log, stderr=subprocess.STDOUT) as node,
        child(
            rig_command("--rates", rates), env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        ) as rig,
    ):
        w = Watcher(rig, watch=(node,))
        w.wait_for(lambda e: e["ev"] == "labels", timeout=180)
        time.sleep(2.0)

        cpu: list[float] = []  # the node's CPU share (cores) in each window

        def window(seconds: float) -> tuple[float, float]:
            t0, c0 = time.monotonic(), _cpu_s(node.pid)
            time.sleep(seconds)
            t1 = time.monotonic()
            cpu.append((_cpu_s(node.pid) - c0) / (t1 - t0))
            return t0, t1

        before = window(args.seconds / 2)
        peak_before = peak_rss_mb(node.pid)
        stop, counts = threading.Event(), {}
        fuzzer = threading.Thread(target=_publisher, args=(stop, args.rate, counts))
        fuzzer.start()
        during = window(args.seconds)
        stop.set()
        fuzzer.join()
        after = window(args.seconds / 2)
        alive = node.poll() is None
        peak = peak_rss_mb(node.pid) if alive else float("nan")
        diag = w.wait_for(lambda e: e["ev"] == "diag", timeout=5, after=after[1] - 1.0)

    def rate(span: tuple[float, float]) -> float:
        return len(w.window("labels", *span)) / (span[1] - span[0])

    errors = {  # per sensor status "decode_error.<reason>", the pipeline's "<topic>/<reason>"
        k.removeprefix("decode_error.") if "/" in k else f"{sensor}/{k[13:]}": v
        for sensor, s in diag["status"].items()
        for k, v in s.items()
        if k.startswith("decode_error.") and v != "0"
    }
    print(
        f"`python bench/fuzz.py live --seconds {args.seconds} --rate {args.rate}`: rig "
        f"{rates} Hz, untrained anyseg_tiny, CPU; fuzzer {counts.get('sent', 0)} messages sent "
        f"({counts.get('unrepresentable', 0)} mutations the ROS types cannot carry not sent)\n"
    )
    print(
        "| labels/s before | during | after | node CPU (cores) before / during / after "
        "| node up after | node peak RSS before the fuzzer (MB) | at the end (MB) |"
    )
    print("|---:|---:|---:|---|---|---:|---:|")
    print(
        f"| {rate(before):.1f} | {rate(during):.1f} | {rate(after):.1f} | "
        f"{' / '.join(f'{c:.2f}' for c in cpu)} | "
        f"{'yes' if alive else 'NO'} | {peak_before:.0f} | {peak:.0f} |"
    )
    print(f"\nmachine load average at the end: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    pipeline = {
        k: v
        for s in diag["status"].values()
        for k, v in s.items()
        if (k.startswith("sync_drop.") or k in ("frames_dropped_busy", "sync_resets")) and v != "0"
    }
    print("\ndecode errors counted by the node: " + json.dumps(errors, sort_keys=True))
    print("synchroniser drops and busy skips: " + json.dumps(pipeline, sort_keys=True))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="mode", required=True)
    off = sub.add_parser("offline")
    off.add_argument("--cases", type=int, default=10_000)
    off.add_argument("--seed", type=int, default=1)
    on = sub.add_parser("live")
    on.add_argument("--seconds", type=float, default=20.0)
    on.add_argument("--rate", type=float, default=200.0, help="malformed messages per second")
    args = ap.parse_args()
    offline(args) if args.mode == "offline" else live(args)


if __name__ == "__main__":
    main()
