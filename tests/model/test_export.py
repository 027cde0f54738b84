"""anyseg-export and the onnxruntime backend: self-describing graphs, one per subset size (one
per subset with per-modality norms), torch parity on every exported subset, clear refusals."""

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from anyseg_model import Segmentor, all_subsets, create_model, save_checkpoint, subset_name
from anyseg_model.export import MANIFEST, main
from anyseg_model.representations import LidarScan

SIZE = (32, 48)  # H, W: small, CI time


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(create_model("anyseg_tiny", num_classes=5), path, input_size=SIZE)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    # The tests check parity themselves; the exporter's own check runs in the tests below.
    assert main([str(checkpoint), "--out", str(out), "--no-check"]) == 0
    return out


def _arrays(h: int = 60, w: int = 80) -> dict:
    rng = np.random.default_rng(3)
    pts = np.stack(
        [rng.uniform(2, 30, 3000), rng.uniform(-10, 10, 3000), rng.uniform(-1, 1, 3000)], 1
    )
    pts = np.concatenate([pts, rng.uniform(0, 1, (3000, 1))], 1).astype(np.float32)
    K = np.array([[40.0, 0, w / 2], [0, 40.0, h / 2], [0, 0, 1]])
    T = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    return {
        "rgb": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "depth": rng.integers(0, 30000, (h, w), dtype=np.uint16),
        "event": rng.integers(120, 136, (h, w), dtype=np.uint8),
        "lidar": LidarScan(pts, K, T, (w, h)),
    }


def test_graphs_carry_the_checkpoint_description(exported, checkpoint):
    manifest = json.loads((exported / MANIFEST).read_text())
    assert sorted(manifest["graphs"]) == sorted(subset_name(s) for s in all_subsets())
    files = sorted(p.name for p in exported.glob("*.onnx"))
    assert files == [f"{k}_modalities.onnx" for k in (1, 2, 3, 4)]  # shared norms: by size
    for name in files:
        proto = onnx.load(str(exported / name))
        meta = json.loads({p.key: p.value for p in proto.metadata_props}["anyseg"])
        assert meta["classes"] == [f"class_{i}" for i in range(5)] and len(meta["palette"]) == 5
        assert meta["representations"]["lidar"] == {"name": "lidar_projected", "params": {}}
        assert meta["input_size"] == list(SIZE) and meta["model"]["name"] == "anyseg_tiny"
        k = int(name[0])
        assert {len(s.split("+")) for s in meta["subsets"]} == {k}
        assert [i.name for i in proto.graph.input] == [f"x{i}" for i in range(k)]
    assert manifest["checkpoint"] == checkpoint.name


def test_onnxruntime_matches_torch_on_every_exported_subset(exported, checkpoint):
    torch_seg = Segmentor.from_checkpoint(checkpoint, device="cpu")
    ort_seg = Segmentor.from_checkpoint(
        checkpoint, device="cpu", backend="onnxruntime", onnx_dir=exported
    )
    arrays = _arrays()
    for subset in all_subsets():
        a = {m: arrays[m] for m in subset}
        diff = (ort_seg.logits(a) - torch_seg.logits(a)).abs().max().item()
        assert diff <= 1e-4, (subset, diff)
    assert len(ort_seg.runner._files) == 4  # one session per graph, shared by its subsets


def test_per_modality_norms_get_one_graph_per_subset(tmp_path):
    path = tmp_path / "pm.pt"
    model = create_model(
        "anyseg_tiny", num_classes=3, modalities=("rgb", "lidar"), norm="per_modality"
    )
    save_checkpoint(model, path, input_size=SIZE)
    out = tmp_path / "onnx"
    assert main([str(path), "--out", str(out), "--subsets", "lidar,rgb+lidar"]) == 0
    assert sorted(p.name for p in out.glob("*.onnx")) == ["lidar.onnx", "rgb+lidar.onnx"]
    ort_seg = Segmentor.from_checkpoint(path, device="cpu", backend="onnxruntime", onnx_dir=out)
    torch_seg = Segmentor.from_checkpoint(path, device="cpu")
    arrays = _arrays()
    for subset in (("lidar",), ("rgb", "lidar")):
        a = {m: arrays[m] for m in subset}
        assert (ort_seg.logits(a) - torch_seg.logits(a)).abs().max().item() <= 1e-4
    with pytest.raises(ValueError, match="no graph for subset 'rgb'.*--subsets"):
        ort_seg.predict({"rgb": arrays["rgb"]})


def test_fp16_graph_runs_and_stays_close(checkpoint, tmp_path):
    out = tmp_path / "fp16"
    assert main([str(checkpoint), "--out", str(out), "--subsets", "rgb", "--fp16"]) == 0
    ort_seg = Segmentor.from_checkpoint(
        checkpoint, device="cpu", backend="onnxruntime", onnx_dir=out
    )
    a = {"rgb": _arrays()["rgb"]}
    want = Segmentor.from_checkpoint(checkpoint, device="cpu").logits(a)
    assert (ort_seg.logits(a) - want).abs().max().item() <= 1e-2 * want.abs().max().item()


def test_export_on_demand_without_a_directory(checkpoint):
    seg = Segmentor.from_checkpoint(checkpoint, device="cpu", backend="onnxruntime")
    a = {m: _arrays()[m] for m in ("depth", "lidar")}
    want = Segmentor.from_checkpoint(checkpoint, device="cpu").logits(a)
    assert (seg.logits(a) - want).abs().max().item() <= 1e-4
    assert [p.name for p in seg.runner.directory.glob("*.onnx")] == ["2_modalities.onnx"]


def test_a_directory_from_another_checkpoint_is_refused(exported, tmp_path):
    other = tmp_path / "other.pt"
    save_checkpoint(create_model("anyseg_tiny", num_classes=5), other, input_size=SIZE)
    with pytest.raises(ValueError, match="was exported from 'tiny.pt'.*SHA-256"):
        Segmentor.from_checkpoint(other, device="cpu", backend="onnxruntime", onnx_dir=exported)


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own refusals
        return int(e.code)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "abc"], "size 'abc': want HxW"),
        (["--subsets", "rgb+sonar"], "unknown modality"),
        (["--native"], "has no input_size .*give --size HxW"),
        (["--missing"], "does not exist"),
    ],
)
def test_cli_refusals_are_one_line(checkpoint, tmp_path, capsys, args, message):
    if args == ["--native"]:
        checkpoint, args = tmp_path / "native.pt", []
        save_checkpoint(create_model("anyseg_tiny", num_classes=5), checkpoint)
    elif args == ["--missing"]:
        checkpoint, args = tmp_path / "nope.pt", []
    assert _exit_code([str(checkpoint), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_providers_tensorrt_then_cuda_then_cpu(tmp_path):
    from anyseg_model.backends import providers_for

    cpu = torch.device("cpu")
    assert providers_for(cpu, ["TensorrtExecutionProvider", "CPUExecutionProvider"], tmp_path) == [
        "CPUExecutionProvider"
    ]
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen = providers_for(torch.device("cuda:1"), everything, tmp_path)
    assert [p if isinstance(p, str) else p[0] for p in chosen] == everything
    trt = chosen[0][1]
    assert trt["device_id"] == 1 and trt["trt_fp16_enable"]
    assert trt["trt_engine_cache_path"] == str(tmp_path)
    with pytest.raises(ValueError, match="install onnxruntime-gpu"):
        providers_for(torch.device("cuda"), ["CPUExecutionProvider"], tmp_path)
