"""The DELIVER recipe end to end on a fake DELIVER that the synthetic world writes at DELIVER's
1042x1042 (training/configs/deliver_b0.yaml with a tiny model, a small crop and one step per
run): teacher from an ImageNet-style MiT file, student from that file (the reference) and from
the teacher (the variant), evaluation with the paper's protocol."""

import json
from pathlib import Path

import pytest
import torch

from anyseg_model import load_checkpoint
from anyseg_model.encoders.mit import MixVisionTransformer
from anyseg_model.model import _REGISTRY

CONFIG = str(Path(__file__).resolve().parents[2] / "training" / "configs" / "deliver_b0.yaml")


@pytest.fixture(scope="module")
def fake_deliver(tmp_path_factory):
    from anyseg_sim.deliver_writer import write_deliver

    root = tmp_path_factory.mktemp("deliver")
    # scenes 0-2 -> train, 3 -> val (anyseg_sim.deliver_writer.split_of)
    write_deliver(root / "DELIVER", frames=1, width=1042, height=1042, seed=0, scenes=4)
    spec = {k: v for k, v in _REGISTRY["anyseg_tiny"].items() if k != "decoder_dim"}
    mit = MixVisionTransformer(**spec).state_dict()  # a stand-in ImageNet file, official names
    mit["head.weight"], mit["head.bias"] = torch.zeros(1000, 128), torch.zeros(1000)
    torch.save(mit, root / "mit_tiny.pth")
    return root


def _common(root: Path, out: str) -> list[str]:
    return [
        "--config",
        CONFIG,
        "--data",
        f"deliver:{root / 'DELIVER'}",
        "--out",
        str(root / out),
        "model.name=anyseg_tiny",
        "model.decoder_dim=0",
        f"model.pretrained={root / 'mit_tiny.pth'}",
        "data.allow_partial=true",  # a fake with 3 + 1 frames, not 3983 + 2005
        "data.input_size=[64,64]",
        "data.num_workers=0",
        "optim.batch_size=2",
        "optim.max_steps=1",
        "run.threads=1",
    ]


def test_partial_deliver_is_refused_without_the_option(fake_deliver):
    from training import train_teacher

    args = [a for a in _common(fake_deliver, "refused") if a != "data.allow_partial=true"]
    with pytest.raises(SystemExit, match=r"DELIVER val split .* 1 front-view frames.*2005"):
        train_teacher.main(args)


def test_reference_recipe_and_teacher_variant_end_to_end(fake_deliver):
    from training import distill, evaluate, train_teacher

    root = fake_deliver
    assert train_teacher.main(_common(root, "teacher")) == 0
    teacher = root / "teacher" / "teacher.pt"
    ck = load_checkpoint(teacher)
    assert ck.representations["depth"].name == "image" and ck.input_size == (64, 64)
    for init in ("mit", "teacher"):
        out = f"student_{init}"
        args = [*_common(root, out), "--teacher", str(teacher), f"student.init={init}"]
        assert distill.main(args) == 0
        d = json.loads((root / out / "eval.json").read_text())
        assert d["protocol"] == "paper" and d["label_size"] == [64, 64]
        assert d["headline"] == "mean_miou_nan0" and len(d["subsets"]) == 15
        assert load_checkpoint(root / out / "student.pt").meta["config"]["student"]["init"] == init
    assert (
        evaluate.main(
            [
                "--checkpoint",
                str(root / "student_mit" / "student.pt"),
                "--out",
                str(root / "eval"),
                "run.eval_protocol=native",
            ]
        )
        == 0
    )
    d = json.loads((root / "eval" / "eval.json").read_text())
    assert d["label_size"] == "native" and d["headline"] == "mean_miou"
    pixels = {s["pixels"] for s in d["subsets"].values()}
    assert len(pixels) == 1 and pixels.pop() > 1000 * 1000  # scored at 1042x1042, not 64x64
