"""Input decoding speed, and what a robot-like recording costs in score.

    .venv/bin/python bench/bench_inputs.py decode            # evt3, jpeg, compressedDepth, RVL
    .venv/bin/python bench/bench_inputs.py scores --frames 100 --out runs/bench_inputs

decode: 1 M events of EVT 3.0 (random pixels, so every event needs its own row word: the worst
case for words per event) decoded in packets of 100 k, best of 5; a 640x480 JPEG, 16UC1 PNG and
RVL compressedDepth frame, best of 20.
scores: the same synthetic drive recorded raw and as a robot records it (jpeg, compressedDepth,
evt3 packets, Ouster-like cloud, /tf_static), each scored offline with the shipped checkpoint
and nothing else (no calibration file, no parameter for the robot one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


def decode() -> dict:
    from anyseg_ros import transport
    from anyseg_ros.core.events import Evt3Decoder, Evt3Encoder

    rng = np.random.default_rng(0)
    n = 1_000_000
    t = np.sort(rng.integers(16_000_000, 16_500_000, n))
    x, y, p = rng.integers(0, 1280, n), rng.integers(0, 720, n), rng.integers(0, 2, n)
    enc = Evt3Encoder()
    packets = [
        enc.encode(
            t[a : a + 100_000], x[a : a + 100_000], y[a : a + 100_000], p[a : a + 100_000]
        ).tobytes()
        for a in range(0, n, 100_000)
    ]

    def evt3():
        dec = Evt3Decoder()
        got = sum(len(dec.decode(pk, 1280, 720)) for pk in packets)
        assert got == n

    out = {"evt3_1M_events_ms": best_ms(evt3, 5), "evt3_words": sum(len(pk) for pk in packets) // 2}
    yy, xx = np.mgrid[0:480, 0:640]
    img = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    fmt, data = transport.encode_compressed(img, "jpeg")
    msg = type("M", (), {"format": fmt, "data": data})
    out["jpeg_640x480_ms"] = best_ms(lambda: transport.decode_compressed(msg, ("rgb8",)), 20)
    depth = (1000 + 3 * xx + yy).astype(np.uint16)
    depth[100:200, 100:300] = 0
    for codec in ("png", "rvl"):
        fmt, data = transport.encode_compressed_depth(depth, codec, depth_max=65.0)
        m = type("M", (), {"format": fmt, "data": data})
        out[f"compressedDepth_{codec}_640x480_ms"] = best_ms(
            lambda m=m: transport.decode_compressed_depth(m), 20
        )
    out["rvl_bytes_per_pixel"] = (len(data) - 20) / depth.size
    return out


def scores(frames: int, out: Path) -> dict:
    from anyseg_sim import SyntheticWorld, WorldConfig, write_bag
    from anyseg_sim.files import write_calibration
    from anyseg_tools.evaluate import evaluate

    shutil.rmtree(out, ignore_errors=True)
    (out / "raw").mkdir(parents=True)

    def world():
        return SyntheticWorld(WorldConfig(width=128, height=96, seed=5))

    write_bag(out / "raw" / "bag", world(), frames=frames)
    write_calibration(out / "raw" / "calibration.yaml", world())
    write_bag(out / "robot", world(), frames=frames, robot=True)
    ckpt = Path(__file__).resolve().parents[1] / "checkpoints" / "anyseg_tiny_synthetic.pt"
    result = {}
    for name, bag in (("raw", out / "raw" / "bag"), ("robot", out / "robot")):
        rep = evaluate(bag, ckpt, out / f"report_{name}", device="cpu", on_line=lambda _: None)
        r = rep.report
        result[name] = {
            "frames_scored": r["frames_scored"],
            "subsets": {k: v["miou"] for k, v in r["subsets"].items()},
            "frames_per_subset": r["frames_per_subset"],
            "decode_errors": r["decode_errors"],
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("decode", "scores"))
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_inputs"))
    args = ap.parse_args()
    res = decode() if args.what == "decode" else scores(args.frames, args.out)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
