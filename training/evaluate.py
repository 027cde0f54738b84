"""Evaluate one checkpoint on EVERY non-empty subset of its modalities (docs/method.md section 7).

    python training/evaluate.py --checkpoint runs/student/student.pt
    python training/evaluate.py --checkpoint S.pt --data deliver:/data/DELIVER data.val_split=test
    python training/evaluate.py --checkpoint S.pt --config training/configs/smoke.yaml \\
        --out runs/eval

Missing modalities are dropped from the fusion mean, never zero-filled. Per subset: confusion
matrix over the split, per-class IoU, mIoU over classes that occur (``miou``) and over all classes
with NaN counted as 0 (``miou_nan0``, the reference convention). ``run.eval_protocol=paper``
scores against labels resized to the input size (nearest; DELIVER at 1024x1024) and names
``mean_miou_nan0`` the headline, as the paper reports. Prints a markdown table and writes
<out>/eval.json:
  {"subsets": {"rgb": {"miou", "miou_nan0", "per_class_iou", "pixels"}, ...},
   "mean_miou", "mean_miou_nan0", "classes", "checkpoint", "data", "split", "protocol",
   "label_size", "headline", "headline_value"}

The data config (source, input size, splits) comes from --config/overrides if given, else from
the config stored in the checkpoint; the representations are always the checkpoint's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from anyseg_model import load_checkpoint
from training.common import base_parser, build_data, write_scores
from training.config import from_dict, load_config, save_config
from training.engine import amp_settings, setup_runtime
from training.loop import label_size, protocol_info
from training.subset_eval import evaluate_subsets


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument(
        "--checkpoint", required=True, help="an AnySeg checkpoint (teacher.pt, student.pt, ...)"
    )
    parser.add_argument(
        "--max-batches", type=int, default=0, help="stop after this many batches (0 = all)"
    )
    args = parser.parse_intermixed_args(argv)

    ck = load_checkpoint(args.checkpoint)
    # Which data: an explicit config/overrides win; else the run's own config from the checkpoint.
    overrides = list(args.overrides) + ([f"data.source={args.data}"] if args.data else [])
    stored = ck.meta.get("config")
    base = from_dict(stored) if stored and not args.config else None
    cfg = load_config(args.config, overrides, base=base)
    cfg.model.modalities = list(ck.modalities)
    if ck.input_size:
        cfg.data.input_size = list(ck.input_size)
    rt = setup_runtime(cfg.run.device, cfg.run.seed, cfg.run.threads, cfg.run.deterministic)
    out = Path(args.out or Path(args.checkpoint).with_suffix("").as_posix() + "_eval")
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")

    # The checkpoint's representations decide how raw data becomes input, as on the robot.
    data = build_data(cfg, rt, train=False, representations=ck.representations)
    if tuple(data.classes) != tuple(ck.classes):
        raise SystemExit(
            f"data classes ({len(data.classes)}) differ from the checkpoint's ({len(ck.classes)})"
        )
    model = ck.model.to(rt.device)
    loader = torch.utils.data.DataLoader(
        data.val, cfg.optim.batch_size, shuffle=False, num_workers=cfg.data.num_workers
    )
    print(
        f"evaluating {args.checkpoint} on {cfg.data.source} [{cfg.data.val_split}], "
        f"{len(data.val)} samples, "
        f"{2 ** len(ck.modalities) - 1} subsets",
        flush=True,
    )
    scores = evaluate_subsets(
        model,
        loader,
        ck.classes,
        rt.device,
        amp_dtype=amp_settings(rt.device, cfg.run.amp)[0],
        max_batches=args.max_batches,
        label_size=label_size(cfg),
    )
    extra = {"checkpoint": str(args.checkpoint), "data": cfg.data.source}
    extra.update(split=cfg.data.val_split, **protocol_info(cfg, scores.to_dict()))
    summary = write_scores(scores, out, extra=extra)
    print(scores.table())
    print(
        f"mean mIoU over {len(summary['subsets'])} subsets: {summary['mean_miou']} "
        f"(NaN=0 over all {len(ck.classes)} classes: {summary['mean_miou_nan0']}); "
        f"protocol {summary['protocol']}, headline {summary['headline']}; "
        f"wrote {out / 'eval.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
