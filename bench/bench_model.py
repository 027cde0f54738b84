"""CPU (or CUDA) latency of the anymodal segmentor; figures for BENCHMARKS.md.

    python bench/bench_model.py                      # CPU: tiny and b0, 1..4 modalities, 256/512 px
    python bench/bench_model.py --device cuda --sizes 1024 --models anyseg_b0 \\
        --dtypes fp32,fp16,bf16

Prints a markdown table of median milliseconds per forward (batch 1) and, per model and size, the
ratio of running the shared encoder once per modality to the folded batch of all four.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from anyseg_model import MODALITIES, create_model

DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def median_ms(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
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
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", default="anyseg_tiny,anyseg_b0")
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {args.threads} threads"
    )
    print(f"device: {name}; torch {torch.__version__}; batch 1; median of {args.repeats}\n")
    print(
        "| model | px | dtype | 1 mod | 2 mods | 3 mods | 4 mods "
        "| per-modality loop (4) | loop / folded |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for model_name in args.models.split(","):
        torch.manual_seed(0)
        model = create_model(model_name, num_classes=25).to(device).eval()
        for size in map(int, args.sizes.split(",")):
            x = {m: torch.randn(1, 3, size, size, device=device) for m in MODALITIES}
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
                    for k in (1, 2, 3, 4)
                ]
                per_mod = median_ms(loop, device, args.repeats)
                print(
                    f"| {model_name} | {size} | {dt} | "
                    + " | ".join(f"{c:.1f}" for c in cells)
                    + f" | {per_mod:.1f} | {per_mod / cells[3]:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
