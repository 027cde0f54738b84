"""The node's own cost and its end-to-end behaviour; figures for BENCHMARKS.md.

    python bench/bench_ros.py                               # all three parts, CPU
    python bench/bench_ros.py --parts e2e --e2e-size 320x240 --e2e-model anyseg_tiny --device cpu
    python bench/bench_ros.py --parts e2e --e2e-model anyseg_b0 --device cuda   # on a GPU machine

1. frame: per frame set, model excluded: decode (rgb8 + 16UC1 + mono8 + PointCloud2) + sync +
   outputs (LiDAR projection for the points' labels, colour, message contents) + publishing
   labels, colour, labelled points and info with rclpy (no subscriber), median ms at 640x480
   with a 100k-point cloud. "projection alone" is one project_lidar call, for reference: the
   model's LiDAR preprocessing and the labelled points share it (LidarScan.projection).
2. sync: ModalitySynchronizer throughput (messages/s) on four streams, payloads ignored.
3. e2e: the node and the rig (anyseg_sim.live_rig: synthetic-world frames, camera 15 Hz,
   LiDAR 10 Hz) as processes over loopback DDS:
   latency from sensor stamp to labels received, and labels per second, with an untrained
   checkpoint of the chosen model (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from anyseg_ros.core.decode import build_image, build_pointcloud
from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_ros.core.sync import ModalitySynchronizer
from anyseg_sim.rig import lidar_extrinsic
from anyseg_tools.harness import Watcher, node_command, rig_command
from anyseg_tools.localdds import child, loopback_env
from anyseg_tools.params import write_params

LIDAR_TO_CAMERA = lidar_extrinsic()


def bench_frame(width: int, height: int, points: int, repeats: int) -> dict[str, float]:
    # Loopback-only DDS in this process too, before rclpy creates its participant.
    os.environ.update(loopback_env())
    import rclpy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
    from std_msgs.msg import Header, String

    from anyseg_model.representations import project_lidar
    from anyseg_ros.pipeline import Pipeline

    rng = np.random.default_rng(0)
    values = {"lidar_extrinsic": LIDAR_TO_CAMERA}
    settings = SyncSettings.from_parameters(values)
    pipe = Pipeline(
        InputSettings.from_parameters(values), [tuple(rng.integers(0, 255, 3)) for _ in range(25)]
    )
    f = width / 2.0
    pipe.set_camera_info(
        CameraInfo(
            width=width, height=height, k=[f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
        )
    )
    cloud = np.stack(
        [
            rng.uniform(2, 50, points),
            rng.uniform(-20, 20, points),
            rng.uniform(-2, 2, points),
            rng.uniform(0, 1, points),
        ],
        1,
    ).astype(np.float32)
    kw = build_pointcloud(cloud)
    fields = [PointField(**f._asdict()) for f in kw.pop("fields")]
    msgs = {
        "rgb": Image(
            **build_image(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), "rgb8")
        ),
        "depth": Image(
            **build_image(rng.integers(0, 60000, (height, width), dtype=np.uint16), "16UC1")
        ),
        "event": Image(**build_image(np.full((height, width), 128, np.uint8), "mono8")),
        "lidar": PointCloud2(fields=fields, **kw),
    }
    labels = rng.integers(0, 25, (height, width), dtype=np.uint8)

    rclpy.init()
    node = rclpy.create_node("bench_ros")
    pubs = {
        k: node.create_publisher(t, f"bench/{k}", 10)
        for k, t in (("labels", Image), ("color", Image), ("points", PointCloud2), ("info", String))
    }
    sync = ModalitySynchronizer(
        settings.modalities, settings.slop_ns, settings.timeout_ns, settings.wait_ns
    )
    keys = ("decode", "sync", "outputs", "publish", "total", "projection alone")
    parts: dict[str, list[float]] = {k: [] for k in keys}
    for i in range(repeats + 3):
        stamp = (i + 1) * 100_000_000
        for m in msgs.values():
            m.header.stamp.sec, m.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        t0 = time.perf_counter()
        decoded = {m: pipe.decode(m, msg) for m, msg in msgs.items()}
        t1 = time.perf_counter()
        sets = []
        for m, (st, sample) in decoded.items():
            sets += sync.push(m, st, sample, stamp)
        (fs,) = sets
        arrays = pipe.arrays(fs)
        t2 = time.perf_counter()
        out = pipe.outputs(fs, arrays, labels, want_color=True)  # projects once for the points
        t3 = time.perf_counter()
        header = Header(frame_id="camera")
        pubs["labels"].publish(Image(header=header, **out.labels))
        pubs["color"].publish(Image(header=header, **out.color))
        pf = [PointField(**f._asdict()) for f in out.points.pop("fields")]
        pubs["points"].publish(PointCloud2(header=header, fields=pf, **out.points))
        pubs["info"].publish(String(data=json.dumps(out.info)))
        t4 = time.perf_counter()
        project_lidar(arrays["lidar"])  # for the breakdown: one projection on its own
        t5 = time.perf_counter()
        if i >= 3:
            for k, v in zip(
                keys, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, t5 - t4), strict=True
            ):
                parts[k].append(v * 1e3)
    node.destroy_node()
    rclpy.try_shutdown()
    return {k: statistics.median(v) for k, v in parts.items()}


def bench_sync(messages: int) -> float:
    sync = ModalitySynchronizer(
        ("rgb", "depth", "event", "lidar"), 15_000_000, 500_000_000, 50_000_000
    )
    periods = {"rgb": 33_333_333, "depth": 33_333_333, "event": 33_333_333, "lidar": 100_000_000}
    stream = sorted(
        (k * p + 1_000_000 * (m == "lidar"), m)
        for m, p in periods.items()
        for k in range(messages // 3)
    )
    stream = stream[:messages]
    t0 = time.perf_counter()
    for stamp, m in stream:
        sync.push(m, stamp, None, stamp + 2_000_000)
    return len(stream) / (time.perf_counter() - t0)


def bench_e2e(size: str, model: str, device: str, seconds: float) -> dict[str, float]:
    from anyseg_model import create_model, save_checkpoint

    width, height = (int(v) for v in size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_ros_"))
    ckpt = tmp / f"{model}.pt"
    save_checkpoint(
        create_model(model, num_classes=25, modalities=("rgb", "depth", "event", "lidar")), ckpt
    )
    values = {"checkpoint": str(ckpt), "device": device, "lidar_extrinsic": LIDAR_TO_CAMERA}
    params = write_params(tmp / "params.yaml", values)
    env = loopback_env()
    rig_cmd = rig_command("--width", str(width), "--height", str(height))
    with (
        child(
            node_command(params), env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as node,
        child(rig_cmd, env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as rig,
    ):
        w = Watcher(rig, watch=(node,))
        w.wait_for(lambda e: e["ev"] == "labels", timeout=180)
        time.sleep(2.0)  # first frames at a new size are slower
        t0 = time.monotonic()
        time.sleep(seconds)
        t1 = time.monotonic()
    labels = w.window("labels", t0, t1)
    infos = w.window("info", t0, t1)
    lat = sorted(e["latency_ms"] for e in labels)
    return {
        "camera_hz": len(w.published("rgb", t0, t1)) / (t1 - t0),
        "labels_hz": len(labels) / (t1 - t0),
        "latency_median_ms": statistics.median(lat),
        "latency_p90_ms": lat[int(0.9 * (len(lat) - 1))],
        "processing_median_ms": statistics.median(i["processing_ms"] for i in infos),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--parts", default="frame,sync,e2e")
    p.add_argument("--size", default="640x480", help="frame part: image size")
    p.add_argument("--points", type=int, default=100_000, help="frame part: LiDAR points")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--sync-messages", type=int, default=200_000)
    p.add_argument("--e2e-size", default="640x480")
    p.add_argument("--e2e-model", default="anyseg_tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=15.0)
    args = p.parse_args()
    parts = args.parts.split(",")
    if "frame" in parts:
        w, h = (int(v) for v in args.size.split("x"))
        res = bench_frame(w, h, args.points, args.repeats)
        print(
            f"frame set {w}x{h}, {args.points} points, model excluded (median ms): "
            + ", ".join(f"{k} {v:.2f}" for k, v in res.items())
        )
    if "sync" in parts:
        print(
            f"synchroniser: {bench_sync(args.sync_messages):,.0f} messages/s "
            "(4 streams, 30/30/30/10 Hz stamps)"
        )
    if "e2e" in parts:
        res = bench_e2e(args.e2e_size, args.e2e_model, args.device, args.seconds)
        print(
            f"end to end {args.e2e_model} on {args.device}, synthetic world {args.e2e_size}, "
            "camera 15 Hz, "
            "LiDAR 10 Hz: " + ", ".join(f"{k} {v:.1f}" for k, v in res.items())
        )


if __name__ == "__main__":
    main()
