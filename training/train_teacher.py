"""Train the PML teacher (docs/method.md section 3): all modalities in parallel, mean fusion per
stage, supervised OHEM cross-entropy only.

    python training/train_teacher.py                                # synthetic defaults
    python training/train_teacher.py --config training/configs/smoke.yaml --out runs/smoke/teacher
    python training/train_teacher.py --data deliver:/data/DELIVER \\
        --config training/configs/deliver_b0.yaml
    torchrun --nproc_per_node=4 training/train_teacher.py --config ...   # DDP
    python training/train_teacher.py --out runs/t --resume          # continue exactly

Writes <out>/config.yaml, log.csv (+ tb/), checkpoint.pt (resumable, every epoch),
teacher.pt (the final model, node-loadable) and eval.json (every modality subset on val).
"""

from __future__ import annotations

import sys

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from training.common import (
    apply_sync_bn,
    base_parser,
    build_data,
    build_model,
    prepare_run,
    run_meta,
)
from training.engine import cleanup_runtime
from training.loop import finish_run, fit
from training.tasks import TeacherTask


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    args = parser.parse_intermixed_args(argv)
    cfg, rt, out = prepare_run(args, "runs/teacher")

    # Data: the source's raw samples, encoded with the node's representations, augmented jointly.
    data = build_data(cfg, rt)
    if rt.is_main:
        print(
            f"data {cfg.data.source}: {len(data.train)} train / {len(data.val)} val samples, "
            f"modalities {list(data.modalities)}, input {data.input_size}",
            flush=True,
        )

    # Model: one shared encoder for every modality; an optional local MiT file for the encoder.
    model = build_model(cfg, data, pretrained=cfg.model.pretrained)
    if model.pretrained_report is not None and rt.is_main:
        print(f"pretrained encoder: {model.pretrained_report}")
    model = apply_sync_bn(model.to(rt.device), cfg, rt)

    # PML: the teacher always sees every modality the frame has (all of them, for complete data).
    task = TeacherTask(model, cfg.loss)
    trainable = (
        DDP(task, device_ids=[rt.local_rank] if rt.device.type == "cuda" else None)
        if rt.distributed
        else task
    )

    def step(batch: dict) -> dict[str, torch.Tensor]:
        return trainable(batch["inputs"], batch["available"], batch["label"])

    meta = run_meta(cfg, "teacher")
    result = fit(
        cfg, rt, model, trainable, step, data, out, meta=meta, resume=args.resume, desc="teacher"
    )

    if result.finished:
        finish_run(cfg, rt, model, data, out, meta, result, "teacher")
    cleanup_runtime(rt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
