"""The node's own cost, its end-to-end behaviour and its memory; figures for BENCHMARKS.md.

    python bench/bench_ros.py --parts frame --baseline dda73b5    # this tree beside another
    python bench/bench_ros.py --parts e2e --e2e-model anyseg_tiny --device cpu
    python bench/bench_ros.py --parts e2e --e2e-model anyseg_b0 --e2e-size 1024x1024 \\
        --device cuda --rate 30                                    # on a GPU machine
    python bench/bench_ros.py --parts memory                       # peak RSS of the node
    python bench/bench_ros.py --parts lidar --input-size 128x96    # the projection alone

1. frame: one frame set, model excluded, as the node's worker does it: decode (rgb8 + 16UC1 +
   mono8 + PointCloud2 of --points points) + sync (push, frame set -> arrays) + preprocess
   (the model's input on --device at --input-size: encoding, LiDAR z-buffer, resizing) +
   outputs (labels message, colour only with --color, labelled points, info) + publish (rclpy
   messages, no subscriber). Median ms per part, wall clock and process CPU time (the CPU
   time is what the node costs whatever else runs). ``--baseline REF`` checks REF out into a
   temporary git worktree and runs the same measurement on its code in alternating rounds
   (one run, same machine state), then prints both and their ratio part by part.
2. sync: ModalitySynchronizer throughput (messages/s) on four streams, payloads ignored.
3. e2e: the node and bench/feeder.py (frame sets at --rate Hz, --e2e-size, --points) as
   processes over loopback DDS: labels per second, latency from the sensor stamp to labels
   received (p50 / p95), the node's processing time; an untrained checkpoint of --e2e-model
   (speed does not depend on the weights). ``--busy`` keeps one core busy meanwhile.
4. memory: peak resident memory (VmHWM) of the node process with anyseg_b0 on the CPU under
   the feeder, for several image sizes and points per scan.
5. lidar: the LiDAR projection alone (``encode_lidar`` of --points points into --size, at
   --input-size) for each camera model, the compiled CPU loop (``anyseg_model.lidar_kernel``)
   beside the torch path that a GPU runs, in alternating rounds: median ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from feeder import LIDAR_TO_CAMERA, camera_matrix, frame_arrays  # bench/, next to this file

from anyseg_ros.core.decode import build_image, build_pointcloud
from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_ros.core.sync import ModalitySynchronizer
from anyseg_tools.harness import Watcher, node_command
from anyseg_tools.localdds import child, loopback_env
from anyseg_tools.params import write_params

HERE = Path(__file__).resolve().parent

PARTS = ("decode", "sync", "preprocess", "outputs", "publish", "total")


def _size(text: str) -> tuple[int, int]:
    """'640x480' -> (width, height)."""
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


# ---------------------------------------------------------------- 1. frame


def bench_frame(args: argparse.Namespace) -> dict[str, list[float]]:
    """Per-part times (ms) of ``args.repeats`` frame sets, with the code this process imports
    (this tree, or a baseline's through PYTHONPATH: only APIs both have are used)."""
    os.environ.update(loopback_env())  # loopback-only DDS before rclpy makes its participant
    import rclpy
    import torch
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
    from std_msgs.msg import Header, String

    from anyseg_model.preprocess import to_batch
    from anyseg_model.representations import DEFAULT_REPRESENTATIONS, Representation
    from anyseg_ros import messages
    from anyseg_ros.pipeline import Pipeline

    torch.set_num_threads(args.threads)
    try:  # what the node's Segmentor does (this tree; a baseline may not have it)
        from anyseg_model.backends import keep_freed_memory

        keep_freed_memory()
    except ImportError:
        pass
    width, height = _size(args.size)
    size = None if args.input_size == "native" else _size(args.input_size)[::-1]
    values = {"lidar_extrinsic": LIDAR_TO_CAMERA}
    sync_settings = SyncSettings.from_parameters(values)
    rng = np.random.default_rng(0)
    pipe = Pipeline(
        InputSettings.from_parameters(values), [tuple(rng.integers(0, 255, 3)) for _ in range(25)]
    )
    pipe.set_camera_info(
        CameraInfo(width=width, height=height, k=camera_matrix(width, height), d=[0.0] * 5)
    )
    raw = frame_arrays(width, height, args.points)
    kw = build_pointcloud(raw["lidar"])
    fields = [PointField(**f._asdict()) for f in kw.pop("fields")]
    msgs = {
        m: Image(**build_image(raw[m], enc))
        for m, enc in (("rgb", "rgb8"), ("depth", "16UC1"), ("event", "mono8"))
    }
    msgs["lidar"] = PointCloud2(fields=fields, **kw)
    reps = {m: Representation(DEFAULT_REPRESENTATIONS[m]) for m in msgs}
    labels = rng.integers(0, 25, (height, width), dtype=np.uint8)

    rclpy.init()
    node = rclpy.create_node("bench_ros")
    pubs = {
        k: node.create_publisher(t, f"bench/{k}", 10)
        for k, t in (("labels", Image), ("color", Image), ("points", PointCloud2), ("info", String))
    }
    sync = ModalitySynchronizer(
        sync_settings.modalities,
        sync_settings.slop_ns,
        sync_settings.timeout_ns,
        sync_settings.wait_ns,
    )
    parts: dict[str, list[float]] = {k: [] for k in PARTS}
    parts.update({f"cpu {k}": [] for k in PARTS})  # process CPU time: what the load cannot add
    clock = time.process_time
    for i in range(args.repeats + 3):
        stamp = (i + 1) * 100_000_000
        for m in msgs.values():
            m.header.stamp.sec, m.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        t0, c0 = time.perf_counter(), clock()
        decoded = {m: pipe.decode(m, msg) for m, msg in msgs.items()}
        t1, c1 = time.perf_counter(), clock()
        sets = []
        for m, (st, sample) in decoded.items():
            sets += sync.push(m, st, sample, stamp)
        (fs,) = sets
        arrays = pipe.arrays(fs)
        t2, c2 = time.perf_counter(), clock()
        batch = to_batch(arrays, reps, size or (height, width), args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        assert len(batch) == 4
        t3, c3 = time.perf_counter(), clock()
        out = pipe.outputs(fs, arrays, labels, want_color=args.color)
        t4, c4 = time.perf_counter(), clock()
        header = Header(frame_id="camera")
        pubs["labels"].publish(messages.image(header, out.labels))
        if out.color is not None:
            pubs["color"].publish(messages.image(header, out.color))
        pubs["points"].publish(messages.pointcloud(header, out.points))
        pubs["info"].publish(String(data=json.dumps(out.info)))
        t5, c5 = time.perf_counter(), clock()
        if i >= 3:  # warm-up frames apart
            for ts, prefix in (((t0, t1, t2, t3, t4, t5), ""), ((c0, c1, c2, c3, c4, c5), "cpu ")):
                spans = [*zip(ts[:-1], ts[1:], strict=True), (ts[0], ts[-1])]
                for k, (a, b) in zip(PARTS, spans, strict=True):
                    parts[prefix + k].append((b - a) * 1e3)
    node.destroy_node()
    rclpy.try_shutdown()
    return parts


def _frame_command(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--parts",
        "frame-json",
        "--json",
        str(out),
        "--size",
        args.size,
        "--points",
        str(args.points),
        "--repeats",
        str(args.repeats),
        "--input-size",
        args.input_size,
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        *(["--color"] if args.color else []),
    ]


def _run_frame(args: argparse.Namespace, tree: Path) -> dict[str, list[float]]:
    """bench_frame in a child process importing the code of ``tree``."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run(_frame_command(args, Path(f.name)), cwd=tree, env=env, check=True)
        return json.loads(Path(f.name).read_text())


@contextlib.contextmanager
def _worktree(ref: str):
    """A temporary detached git worktree of ``ref``, removed afterwards."""
    root = Path(
        subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
    )
    with tempfile.TemporaryDirectory(prefix="bench_baseline_") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=root, check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root)


def frame_report(args: argparse.Namespace) -> None:
    w, h = _size(args.size)
    what = (
        f"frame set {w}x{h} + {args.points:,} points, input {args.input_size}, "
        f"{args.device}, {args.threads} thread(s), colour {'on' if args.color else 'off'}, "
        f"model excluded; median ms over {args.rounds} x {args.repeats} frame sets"
    )
    here = HERE.parent
    if not args.baseline:
        new = _run_frame(args, here)
        print(what.replace(f"{args.rounds} x ", ""))
        for prefix in ("", "cpu "):
            print(
                ("CPU time: " if prefix else "wall clock: ")
                + ", ".join(f"{k} {statistics.median(new[prefix + k]):.2f}" for k in PARTS)
            )
        return
    new: dict[str, list[float]] = {}
    old: dict[str, list[float]] = {}
    with _worktree(args.baseline) as tree:
        for _ in range(args.rounds):  # alternate, so both see the same load
            for acc, src in ((old, tree), (new, here)):
                for k, v in _run_frame(args, src).items():
                    acc.setdefault(k, []).extend(v)
    print(what)
    print(
        f"\n| part | {args.baseline} wall | this tree wall | ratio "
        f"| {args.baseline} CPU | this tree CPU | ratio |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for k in PARTS:
        cells = []
        for prefix in ("", "cpu "):
            a, b = statistics.median(old[prefix + k]), statistics.median(new[prefix + k])
            cells.append(f"{a:.2f} | {b:.2f} | {a / b:.1f}x")
        print(f"| {k} | " + " | ".join(cells) + " |")


# ---------------------------------------------------------------- 2. sync


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


# ---------------------------------------------------------------- 3. e2e and 4. memory


def _checkpoint(model: str, tmp: Path, input_size: str) -> Path:
    from anyseg_model import create_model, save_checkpoint

    ckpt = tmp / f"{model}.pt"
    size = None if input_size == "native" else _size(input_size)[::-1]
    save_checkpoint(
        create_model(model, num_classes=25, modalities=("rgb", "depth", "event", "lidar")),
        ckpt,
        input_size=size,
    )
    return ckpt


@contextlib.contextmanager
def busy_core(enabled: bool):
    """One process spinning on a core meanwhile (killed by its process group afterwards)."""
    if not enabled:
        yield
        return
    with child([sys.executable, "-c", "while True: pass"], os.environ):
        yield


def run_node(args: argparse.Namespace, size: str, model: str, points: int) -> dict[str, float]:
    """The node and the feeder for ``args.seconds``: rates, latency, node peak memory."""
    from anyseg_tools.harness import peak_rss_mb  # here: the baseline trees lack it

    width, height = _size(size)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ros_"))
    values = {
        "checkpoint": str(_checkpoint(model, tmp, args.input_size)),
        "device": args.device,
        "backend": args.backend,
        "threads": args.threads,
        "lidar_extrinsic": LIDAR_TO_CAMERA,
        "publish_color": False,
    }
    params = write_params(tmp / "params.yaml", values)
    env = loopback_env()
    feeder = [
        sys.executable,
        str(HERE / "feeder.py"),
        *("--width", str(width), "--height", str(height)),
        *("--points", str(points), "--rate", str(args.rate)),
    ]
    log = (tmp / "node.log").open("w")
    with (
        busy_core(args.busy),
        child(node_command(params), env, stdout=log, stderr=subprocess.STDOUT) as node,
        child(feeder, env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as feed,
    ):
        w = Watcher(feed, watch=(node,))
        w.wait_for(lambda e: e["ev"] == "labels", timeout=300)
        time.sleep(args.warmup)
        t0 = time.monotonic()
        time.sleep(args.seconds)
        t1 = time.monotonic()
        peak_mb = peak_rss_mb(node.pid)
        gpu_mb = _gpu_mb(node.pid) if args.device.startswith("cuda") else None
    labels = w.window("labels", t0, t1)
    infos = w.window("info", t0, t1) or [{"processing_ms": float("nan")}]
    lat = sorted(e["latency_ms"] for e in labels) or [float("nan")]  # slower than the window
    return {
        "sent_hz": len(w.published("rgb", t0, t1)) / (t1 - t0),
        "labels_hz": len(labels) / (t1 - t0),
        "latency_p50_ms": statistics.median(lat),
        "latency_p95_ms": lat[int(0.95 * (len(lat) - 1))],
        "processing_p50_ms": statistics.median(i["processing_ms"] for i in infos),
        "node_peak_rss_mb": peak_mb,
        **({"node_gpu_mb": gpu_mb} if gpu_mb is not None else {}),
    }


def _gpu_mb(pid: int) -> float:
    """GPU memory nvidia-smi reports for a process (its CUDA context included), MB."""
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        p, _, mb = line.partition(",")
        if p.strip() == str(pid):
            return float(mb)
    return float("nan")


def memory_report(args: argparse.Namespace) -> None:
    print(
        f"node peak RSS (VmHWM), anyseg_b0, {args.device}, input {args.input_size}, "
        f"feeder {args.rate} Hz, {args.seconds} s each\n"
    )
    print("| image | points per scan | labels/s | peak RSS (MB) |\n|---|---:|---:|---:|")
    for size in args.memory_sizes.split(","):
        for points in (int(p) for p in args.memory_points.split(",")):
            r = run_node(args, size, "anyseg_b0", points)
            print(
                f"| {size} | {points:,} | {r['labels_hz']:.1f} | {r['node_peak_rss_mb']:.0f} |",
                flush=True,
            )


# ---------------------------------------------------------------- 5. lidar


CAMERA_MODELS = [
    ("rectified", None, "plumb_bob"),
    ("plumb_bob", (-0.25, 0.08, 0.001, -0.002, -0.01), "plumb_bob"),
    (
        "rational_polynomial",
        (0.4, -0.2, 0.001, 0.002, 0.05, 0.7, -0.1, 0.03),
        "rational_polynomial",
    ),
    ("equidistant", (0.05, -0.01, 0.002, -0.0005), "equidistant"),
]


def lidar_report(args: argparse.Namespace) -> None:
    """Median ms of encode_lidar per camera model: compiled loop, torch path, ratio."""
    from unittest import mock

    import torch

    from anyseg_model import lidar_encoding, lidar_kernel
    from anyseg_model.representations import LidarScan

    torch.set_num_threads(args.threads)
    w, h = _size(args.size)
    size = None if args.input_size == "native" else _size(args.input_size)[::-1]
    cloud = frame_arrays(w, h, args.points)["lidar"]
    # the node's decoder makes the points the (N, 4) view of planar rows
    points = np.ascontiguousarray(cloud.T).T
    k = np.asarray(camera_matrix(w, h)).reshape(3, 3)
    t = np.asarray(LIDAR_TO_CAMERA).reshape(4, 4)
    print(
        f"encode_lidar: {args.points:,} points into {w}x{h} at input {args.input_size}, "
        f"{args.threads} thread(s), median ms over {args.rounds} x {args.repeats}\n"
    )
    print("| camera model | compiled | torch | ratio |\n|---|---:|---:|---:|")
    for label, d, model in CAMERA_MODELS:
        times: dict[str, list[float]] = {"compiled": [], "torch": []}
        for _ in range(args.rounds):
            for path in times:
                with mock.patch.object(lidar_kernel, "available", lambda p=path: p == "compiled"):
                    for _ in range(args.repeats + 1):  # the first call of a round not counted
                        scan = LidarScan(points, k, t, (w, h), d, model)
                        a = time.perf_counter()
                        lidar_encoding.encode_lidar(scan, "cpu", size)
                        _ = scan.projection.flat  # the labelled points' index, as the node asks
                        times[path].append((time.perf_counter() - a) * 1e3)
                    del times[path][-args.repeats - 1]
        c, p = (statistics.median(v) for v in times.values())
        print(f"| {label} | {c:.2f} | {p:.2f} | {p / c:.1f}x |")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--parts", default="frame,sync,e2e")
    p.add_argument("--size", default="640x480", help="frame part: image WxH")
    p.add_argument("--points", type=int, default=100_000, help="LiDAR points per scan")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3, help="frame part with --baseline")
    p.add_argument("--baseline", default="", help="frame part: a git ref to compare with")
    p.add_argument("--input-size", default="native", help="the model's input WxH, or native")
    p.add_argument("--color", action="store_true", help="frame part: colour subscribed")
    p.add_argument("--json", default="", help=argparse.SUPPRESS)
    p.add_argument("--sync-messages", type=int, default=200_000)
    p.add_argument("--e2e-size", default="640x480")
    p.add_argument("--e2e-model", default="anyseg_tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    p.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads")
    p.add_argument("--rate", type=float, default=15.0, help="e2e / memory: frame sets per s")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0, help="e2e: seconds before measuring")
    p.add_argument("--busy", action="store_true", help="e2e: keep one core busy meanwhile")
    p.add_argument("--memory-sizes", default="320x240,640x480,1280x960")
    p.add_argument("--memory-points", default="10000,100000,400000")
    args = p.parse_args()
    parts = args.parts.split(",")
    if "frame-json" in parts:  # the child of frame_report
        Path(args.json).write_text(json.dumps(bench_frame(args)))
        return
    if "frame" in parts:
        frame_report(args)
    if "sync" in parts:
        print(
            f"synchroniser: {bench_sync(args.sync_messages):,.0f} messages/s "
            "(4 streams, 30/30/30/10 Hz stamps)"
        )
    if "e2e" in parts:
        r = run_node(args, args.e2e_size, args.e2e_model, args.points)
        print(
            f"end to end {args.e2e_model} ({args.backend}, {args.device}, threads "
            f"{args.threads or 'default'}, input {args.input_size}"
            f"{', one core busy' if args.busy else ''}), "
            f"feeder {args.e2e_size} + {args.points:,} points at {args.rate} Hz: "
            + ", ".join(f"{k} {v:.1f}" for k, v in r.items())
        )
    if "memory" in parts:
        memory_report(args)
    if "lidar" in parts:
        lidar_report(args)


if __name__ == "__main__":
    main()
