"""Latency of the anymodal segmentor; figures for BENCHMARKS.md.

    python bench/bench_model.py --parts fold                 # folded batch vs per-modality loop
    python bench/bench_model.py --parts backends             # torch vs onnxruntime on the CPU
    python bench/bench_model.py --parts threads              # threads, idle and one core busy
    python bench/bench_model.py --parts fold --device cuda --sizes 1024x1024 \\
        --models anyseg_b0 --dtypes fp32,fp16,bf16            # GPU; also prints peak memory

fold: median ms per forward (batch 1) with 1..4 modalities, and the ratio of running the
shared encoder once per modality to the folded batch of all four; on CUDA also the peak
memory torch allocated. backends: torch eager vs onnxruntime (graphs from anyseg-export) for
each model, size and 1 or 4 modalities, one thread each, the same encoded inputs; with
``--device cuda``, onnxruntime's CUDA / TensorRT providers. threads: p50 / p95 ms of a whole
``Segmentor.predict`` (preprocessing included) on raw arrays, for 1 and 2 threads of torch and
onnxruntime, with the machine as it is and with one core kept busy by another process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from anyseg_model import MODALITIES, Segmentor, create_model, save_checkpoint

DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def timings_ms(fn, device: torch.device, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def median_ms(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    return statistics.median(timings_ms(fn, device, repeats, warmup))


def _sizes(text: str) -> list[tuple[int, int]]:
    """'320x240,640x480' -> [(240, 320), (480, 640)] as (H, W)."""
    out = []
    for s in text.split(","):
        w, h = (int(v) for v in s.lower().split("x"))
        out.append((h, w))
    return out


def fold(args: argparse.Namespace, device: torch.device) -> None:
    gpu = device.type == "cuda"
    print(
        "| model | size | dtype | 1 mod | 2 mods | 3 mods | 4 mods "
        "| per-modality loop (4) | loop / folded |" + (" peak MB (4 mods) |" if gpu else "")
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if gpu else ""))
    for model_name in args.models.split(","):
        torch.manual_seed(0)
        model = create_model(model_name, num_classes=25).to(device).eval()
        for h, w in _sizes(args.sizes):
            x = {m: torch.randn(1, 3, h, w, device=device) for m in MODALITIES}
            for dt in args.dtypes.split(","):
                amp = DTYPES[dt]

                def run(mods, model=model, x=x, amp=amp):
                    with (
                        torch.inference_mode(),
                        torch.autocast(device.type, dtype=amp, enabled=amp is not None),
                    ):
                        return model({m: x[m] for m in mods})

                def loop(model=model, x=x, amp=amp):
                    # The encoder once per modality, then the same mean and head.
                    with (
                        torch.inference_mode(),
                        torch.autocast(device.type, dtype=amp, enabled=amp is not None),
                    ):
                        feats = [model.forward_features({m: x[m]}).fused for m in MODALITIES]
                        fused = [sum(f[s] for f in feats) / len(feats) for s in range(4)]
                        return model.forward_head(fused)

                cells = [
                    median_ms(lambda k=k: run(MODALITIES[:k]), device, args.repeats)
                    for k in (1, 2, 3)
                ]
                if gpu:
                    torch.cuda.reset_peak_memory_stats(device)
                cells.append(median_ms(lambda: run(MODALITIES), device, args.repeats))
                peak = f" {torch.cuda.max_memory_allocated(device) / 2**20:.0f} |" if gpu else ""
                per_mod = median_ms(loop, device, args.repeats)
                print(
                    f"| {model_name} | {w}x{h} | {dt} | "
                    + " | ".join(f"{c:.1f}" for c in cells)
                    + f" | {per_mod:.1f} | {per_mod / cells[3]:.2f} |{peak}",
                    flush=True,
                )


def _raw(h: int, w: int, mods) -> dict:
    """Raw sensor arrays of one frame set (what the node hands the Segmentor)."""
    from anyseg_model.representations import LidarScan

    rng = np.random.default_rng(0)
    n = 30_000
    x = rng.uniform(2.0, 50.0, n)
    pts = np.stack([x, rng.uniform(-0.8, 0.8, n) * x, rng.uniform(-0.3, 0.3, n) * x], 1)
    pts = np.concatenate([pts, rng.uniform(0, 1, (n, 1))], 1).astype(np.float32)
    K = np.array([[w / 2, 0, w / 2], [0, w / 2, h / 2], [0, 0, 1.0]])
    T = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])
    arrays = {
        "rgb": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "depth": rng.integers(300, 60000, (h, w), dtype=np.uint16),
        "event": np.full((h, w), 128, np.uint8),
        "lidar": LidarScan(pts, K, T, (w, h)),
    }
    return {m: arrays[m] for m in mods}


def _export(ckpt: Path, out: Path) -> Path:
    from anyseg_model.export import export

    export(ckpt, out, subsets=[("rgb",), MODALITIES], log=lambda *_: None)
    return out


def backends(args: argparse.Namespace, device: torch.device) -> None:
    from anyseg_model.preprocess import to_batch

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_model_"))
    provider = "CPU" if device.type == "cpu" else "CUDA / TensorRT"
    print(f"onnxruntime {provider} vs torch eager, {args.threads} thread(s), batch 1, ms\n")
    print("| model | size | modalities | torch | onnxruntime | torch / onnxruntime |")
    print("|---|---|---|---:|---:|---:|")
    for model_name in args.models.split(","):
        for h, w in _sizes(args.sizes):
            ckpt = tmp / f"{model_name}_{h}x{w}.pt"
            torch.manual_seed(0)
            save_checkpoint(create_model(model_name, 25), ckpt, input_size=(h, w))
            onnx_dir = _export(ckpt, tmp / f"{model_name}_{h}x{w}")
            seg_t = Segmentor.from_checkpoint(ckpt, str(device))
            seg_o = Segmentor.from_checkpoint(
                ckpt, str(device), backend="onnxruntime", onnx_dir=onnx_dir, threads=args.threads
            )
            for mods in (("rgb",), MODALITIES):
                batch = to_batch(_raw(h, w, mods), seg_t.representations, (h, w), device)
                a = median_ms(lambda b=batch, r=seg_t.runner: r(b), device, args.repeats)
                b = median_ms(lambda b=batch, r=seg_o.runner: r(b), device, args.repeats)
                print(
                    f"| {model_name} | {w}x{h} | {len(mods)} | {a:.1f} | {b:.1f} | {a / b:.2f} |",
                    flush=True,
                )


def threads(args: argparse.Namespace, device: torch.device) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_threads_"))
    (h, w), *_ = _sizes(args.sizes)
    print(
        f"Segmentor.predict on raw {w}x{h} arrays (4 modalities, preprocessing included), "
        f"{args.repeats} frames, ms p50 / p95\n"
    )
    print("| model | backend | threads | idle p50 | idle p95 | one core busy p50 | busy p95 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    arrays = _raw(h, w, MODALITIES)
    for model_name in args.models.split(","):
        ckpt = tmp / f"{model_name}.pt"
        torch.manual_seed(0)
        save_checkpoint(create_model(model_name, 25), ckpt, input_size=(h, w))
        onnx_dir = _export(ckpt, tmp / model_name)
        for backend in ("torch", "onnxruntime"):
            for n in (1, 2):
                seg = Segmentor.from_checkpoint(
                    ckpt, str(device), backend=backend, onnx_dir=onnx_dir, threads=n
                )
                cells = []
                for busy in (False, True):
                    with _busy_core(busy):
                        t = sorted(
                            timings_ms(lambda s=seg: s.predict(arrays), device, args.repeats)
                        )
                    cells += [statistics.median(t), t[int(0.95 * (len(t) - 1))]]
                print(
                    f"| {model_name} | {backend} | {n} | "
                    + " | ".join(f"{c:.1f}" for c in cells)
                    + " |",
                    flush=True,
                )


class _busy_core:
    """A process spinning on one core for the duration (killed by its pid afterwards)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.proc = enabled, None

    def __enter__(self):
        if self.enabled:
            self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)  # let it reach the scheduler
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--parts", default="fold", help="fold, backends, threads (comma list)")
    ap.add_argument("--models", default="anyseg_tiny,anyseg_b0")
    ap.add_argument("--sizes", default="", help="WxH list (default per part)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; batch 1; median of {args.repeats}\n")
    defaults = {"fold": "256x256,512x512", "backends": "320x240,640x480", "threads": "320x240"}
    sizes = args.sizes
    for part in args.parts.split(","):
        args.sizes = sizes or defaults[part]
        if part == "fold":
            torch.set_num_threads(args.threads)
        {"fold": fold, "backends": backends, "threads": threads}[part](args, device)
        print()


if __name__ == "__main__":
    main()
