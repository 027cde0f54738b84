"""Train the anymodal student (docs/method.md sections 4-5): anymodal dropout and
L = L_sup + mad*MAD + umd*UMD + cmd*CMD (+ ummkd*UMMKD, docs/method.md section 5.5).

    python training/distill.py --teacher runs/teacher/teacher.pt
    python training/distill.py --config training/configs/smoke.yaml --teacher T.pt \\
        --out runs/smoke/student
    python training/distill.py --teacher T.pt loss.umd=0 loss.cmd=0            # L_sup + MAD only
    python training/distill.py --teacher T.pt model.norm=per_modality loss.ummkd=0.5  # UMMKD
    python training/distill.py --teacher T.pt student.init=scratch              # or teacher / mit

Each batch draws a modality subset PER SAMPLE (student.dropout_mode=per_batch: the reference's one
subset per batch), with P(S) = 1/(M C(M,|S|)) by default; the teacher (frozen, eval mode, outside
DDP) always sees every modality. Loss weights are per-pixel / per-term as documented in
training/losses.py (mad=2.0 equals the reference's 50 for 25 classes).

Writes <out>/config.yaml, log.csv (+ tb/), checkpoint.pt (resumable), student.pt, eval.json.
"""

from __future__ import annotations

import sys

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from anyseg_model import load_checkpoint
from training.common import (
    apply_sync_bn,
    base_parser,
    build_data,
    build_model,
    prepare_run,
    run_meta,
)
from training.dropout import SubsetSampler
from training.engine import cleanup_runtime
from training.loop import finish_run, fit
from training.tasks import StudentTask, init_from, teacher_outputs


def teacher_mismatch(ck, data) -> str:
    """Why a teacher checkpoint would see other inputs than it was trained on ('' = none):
    each modality's representation (name and parameters) and the input size must be the data's
    (a teacher trained on HHA depth fed metric depth, or at another size, would silently see
    inputs it never learned)."""
    reps, want = ck.representations, data.representations
    bad = [
        f"{m}: teacher {reps[m].to_dict()} vs data {want[m].to_dict()}"
        for m in data.modalities
        if m in reps and reps[m] != want[m]
    ]
    if ck.input_size and tuple(ck.input_size) != tuple(data.input_size):
        bad.append(f"input size: teacher {list(ck.input_size)} vs data {list(data.input_size)}")
    if bad:
        return "; ".join(bad) + " (train the teacher on this data, or set data.* to the teacher's)"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--teacher", help="teacher checkpoint (sets student.teacher)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    args = parser.parse_intermixed_args(argv)
    if args.teacher:
        args.overrides = [*args.overrides, f"student.teacher={args.teacher}"]
    cfg, rt, out = prepare_run(args, "runs/student")
    s, lc = cfg.student, cfg.loss
    needs_teacher = bool(lc.mad or lc.umd or lc.cmd) or s.init == "teacher"
    if needs_teacher and not s.teacher:
        raise SystemExit(
            "distill.py: give --teacher CKPT (MAD/UMD/CMD and init=teacher need one), "
            "or set loss.mad=0 loss.umd=0 loss.cmd=0 student.init=scratch"
        )

    data = build_data(cfg, rt)

    # Teacher: frozen, eval mode, no gradients, never wrapped in DDP.
    teacher = None
    if s.teacher:
        ck = load_checkpoint(s.teacher)
        teacher = ck.model.to(rt.device).eval().requires_grad_(False)
        if teacher.modalities != data.modalities:
            raise SystemExit(
                f"teacher modalities {list(teacher.modalities)} differ from the data's "
                f"{list(data.modalities)}"
            )
        if ck.classes != data.classes:
            raise SystemExit(
                f"teacher classes ({len(ck.classes)}) differ from the data's ({len(data.classes)})"
            )
        problem = teacher_mismatch(ck, data)
        if problem:
            raise SystemExit(f"teacher {s.teacher} does not fit the data: {problem}")
    if rt.is_main:
        print(
            f"data {cfg.data.source}: {len(data.train)} train / {len(data.val)} val; "
            f"teacher {s.teacher or '-'}; "
            f"init {s.init}; weights mad={lc.mad} umd={lc.umd} cmd={lc.cmd} ummkd={lc.ummkd}",
            flush=True,
        )

    # Student: same architecture family as configured; start from scratch, the teacher, or MiT.
    m = cfg.model
    model = build_model(cfg, data, pretrained=m.pretrained if s.init == "mit" else None)
    if s.init == "teacher":
        problems = init_from(model, teacher.state_dict())
        if problems:
            raise SystemExit(
                f"student.init=teacher: architectures differ ({', '.join(problems[:4])}); "
                f"set model.name to the teacher's ({teacher.config.get('name')})"
            )
    model = apply_sync_bn(model.to(rt.device), cfg, rt)

    # Anymodal dropout: a presence mask per sample, from a stream of this rank's own.
    sampler = SubsetSampler(
        data.modalities,
        distribution=s.subset_distribution,
        mode=s.dropout_mode,
        seed=cfg.run.seed,
        rank=rt.rank,
    )
    task = StudentTask(model, lc)
    # Per-modality norms of absent modalities get no gradient in a step: DDP must allow that.
    trainable = (
        DDP(
            task,
            device_ids=[rt.local_rank] if rt.device.type == "cuda" else None,
            find_unused_parameters=m.norm == "per_modality",
        )
        if rt.distributed
        else task
    )
    use_teacher = bool(lc.mad or lc.umd or lc.cmd)

    def step(batch: dict) -> dict[str, torch.Tensor]:
        inputs, avail, label = batch["inputs"], batch["available"], batch["label"]
        present = sampler.sample(label.shape[0], avail).to(rt.device)  # (B, M)
        t_feats = t_logits = None
        if use_teacher:
            t_feats, t_logits = teacher_outputs(teacher, inputs, avail)  # all modalities, no grad
        return trainable(inputs, present, label, t_feats, t_logits)

    meta = run_meta(cfg, "student", teacher=str(s.teacher))
    result = fit(
        cfg,
        rt,
        model,
        trainable,
        step,
        data,
        out,
        meta=meta,
        sampler=sampler,
        resume=args.resume,
        desc="student",
    )

    if result.finished:
        finish_run(cfg, rt, model, data, out, meta, result, "student")
    cleanup_runtime(rt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
