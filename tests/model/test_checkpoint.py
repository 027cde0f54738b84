"""Self-describing checkpoints and the Segmentor."""

import os

import numpy as np
import pytest
import torch

from anyseg_model import CheckpointError, Segmentor, create_model, load_checkpoint, save_checkpoint
from anyseg_model.checkpoint import read_checkpoint
from anyseg_model.representations import LidarScan, Representation

K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
T = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)


def _arrays(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    pts = np.c_[
        rng.uniform(2, 30, 500),
        rng.uniform(-10, 10, 500),
        rng.uniform(-2, 2, 500),
        rng.uniform(0, 1, 500),
    ]
    return {
        "rgb": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "depth": rng.integers(0, 30000, (h, w), dtype=np.uint16),
        "event": rng.integers(120, 136, (h, w), dtype=np.uint8),
        "lidar": LidarScan(pts, K, T, (w, h)),
    }


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", num_classes=25, norm="per_modality")
    with torch.no_grad():  # move BN statistics off their defaults so they must round-trip too
        model.decode_head.fuse[1].running_mean.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(model, path, input_size=(32, 48), epoch=3, config={"lr": 1e-3, "tags": ["a"]})
    return path, model.eval()


def test_round_trip_gives_identical_predictions(ckpt):
    path, model = ckpt
    loaded = load_checkpoint(path)
    assert loaded.modalities == ("rgb", "depth", "event", "lidar")
    assert loaded.classes[0] == "Building" and len(loaded.palette) == 25
    assert loaded.input_size == (32, 48)
    assert loaded.meta == {"epoch": 3, "config": {"lr": 1e-3, "tags": ["a"]}}
    assert loaded.representations["lidar"] == Representation("lidar_projected")
    x = {m: torch.randn(1, 3, 32, 48) for m in ("rgb", "lidar")}
    assert torch.equal(model(x), loaded.model(x))


def test_segmentor_predicts_any_subset_at_input_size(ckpt):
    path, _ = ckpt
    seg = Segmentor.from_checkpoint(path, device="cpu")
    arrays = _arrays()
    for subset in (("rgb",), ("lidar",), ("depth", "event"), ("rgb", "depth", "event", "lidar")):
        pred = seg.predict({m: arrays[m] for m in subset})
        assert pred.labels.shape == (48, 64) and pred.labels.dtype == np.uint8
        assert (
            pred.confidence.shape == (48, 64)
            and (pred.confidence > 0).all()
            and (pred.confidence <= 1).all()
        )
        assert pred.modalities == subset
    again = Segmentor.from_checkpoint(path, device="cpu").predict(arrays)
    np.testing.assert_array_equal(again.labels, seg.predict(arrays).labels)
    seg.warmup()


def test_segmentor_rejects_bad_input(ckpt):
    seg = Segmentor.from_checkpoint(ckpt[0], device="cpu")
    with pytest.raises(ValueError, match="empty input"):
        seg.predict({})
    with pytest.raises(ValueError, match="radar"):
        seg.predict({"radar": np.zeros((4, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match="dtype"):
        seg.predict({"rgb": np.zeros((4, 4, 3), np.float64)})


def test_device_auto_is_cpu_without_cuda(ckpt):
    seg = Segmentor.from_checkpoint(ckpt[0], device="auto")
    assert seg.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        Segmentor.from_checkpoint(ckpt[0], device="tpu:7")


class _Payload:
    """An object whose unpickling would run code (writes a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_bearing_checkpoint_is_refused_without_running_it(tmp_path, ckpt):
    data = read_checkpoint(ckpt[0])
    marker = tmp_path / "pwned"
    data["meta"] = {"evil": _Payload(str(marker))}
    bad = tmp_path / "bad.pt"
    torch.save(data, bad)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"not a torch file", "unreadable"),
        ({"weights": torch.zeros(2)}, "not an AnySeg"),
    ],
)
def test_unusable_files(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path, ckpt):
    blob = ckpt[0].read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path)


def test_architecture_mismatch_is_a_checkpoint_error(tmp_path, ckpt):
    data = read_checkpoint(ckpt[0])
    data["model"]["name"] = "anyseg_b0"
    path = tmp_path / "mismatch.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="does not build a model"):
        load_checkpoint(path)


def test_save_is_atomic_and_rejects_non_plain_meta(tmp_path):
    model = create_model("anyseg_tiny", num_classes=3, modalities=("rgb",))
    path = tmp_path / "m.pt"
    save_checkpoint(model, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="meta.bad"):
        save_checkpoint(model, path, bad=object())
    assert path.read_bytes() == before  # the failed save left the old file whole
    assert os.listdir(tmp_path) == ["m.pt"]  # and no temp file behind
    with pytest.raises(ValueError, match="3 classes but got 2 names"):
        save_checkpoint(model, path, classes=["a", "b"])
    assert load_checkpoint(path).classes == ("class_0", "class_1", "class_2")


def test_int_keys_survive_the_round_trip(tmp_path):
    """An optimizer's state is keyed by parameter index; resuming needs those ints back."""
    model = create_model("anyseg_tiny", num_classes=3, modalities=("rgb",))
    opt = torch.optim.AdamW(model.parameters())
    model({"rgb": torch.randn(1, 3, 32, 32)}).mean().backward()
    opt.step()
    save_checkpoint(model, tmp_path / "m.pt", extra={"optimizer": opt.state_dict()})
    state = read_checkpoint(tmp_path / "m.pt")["extra"]["optimizer"]
    assert set(state["state"]) == set(opt.state_dict()["state"]) and all(
        isinstance(k, int) for k in state["state"]
    )
    torch.optim.AdamW(model.parameters()).load_state_dict(state)


def test_a_pickled_call_is_named_as_code(tmp_path, ckpt):
    """torch 2.13 words the refusal "unsupported GLOBAL posix.system": it is code, not a
    broken file, and the message says so."""
    data = read_checkpoint(ckpt[0])
    data["meta"] = {"evil": _System("true")}
    bad = tmp_path / "system.pt"
    torch.save(data, bad)
    with pytest.raises(CheckpointError, match=r"carries code .*system.*not run") as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)


class _System:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _set(data, path, value):
    *parents, leaf = path.split(".")
    d = data
    for p in parents:
        d = d[p]
    if value is _DELETE:
        del d[leaf]
    else:
        d[leaf] = value


_DELETE = object()


@pytest.mark.parametrize(
    "field, value, fragment",
    [  # issue 14's malformed checkpoints, each a traceback before
        ("representations", _DELETE, "representations"),
        ("palette", _DELETE, "palette"),
        ("classes", _DELETE, "classes"),
        ("model", _DELETE, "model"),
        ("representations.rgb", 3, "representations"),
        ("representations.depth", {"name": "depth_metric", "params": {"range": 9}}, "range"),
        ("representations.depth", {"name": "depth_metric", "params": {"max_range_m": 0}}, "max"),
        ("palette", [0, 0, 0] * 25, "palette"),
        ("input_size", "abc", "input_size"),
        ("input_size", [0, 0], "input_size"),
        ("input_size", [100_000, 100_000], "input_size"),
        ("model.num_classes", 5_000_000, "num_classes"),
        ("model.modalities", ["rgb", "sonar"], "modalities"),
        ("state_dict", _DELETE, "state_dict"),
    ],
)
def test_every_malformed_checkpoint_is_one_line_naming_file_and_field(
    tmp_path, ckpt, field, value, fragment
):
    data = read_checkpoint(ckpt[0])
    _set(data, field, value)
    path = tmp_path / "malformed.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert str(path) in msg and fragment in msg and "\n" not in msg, msg


def test_a_decompression_bomb_is_refused_from_the_zip_directory(tmp_path, ckpt):
    """A small file whose deflated entry expands far beyond its size is refused before any
    byte of it is decompressed (3.8 MB expanded to 2.27 GB before)."""
    import zipfile

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(ckpt[0]) as src, zipfile.ZipFile(bomb, "w") as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry.filename))
        dst.writestr("bomb/data/99", bytes(64 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 4 * 2**20
    with pytest.raises(CheckpointError, match="decompression bomb"):
        load_checkpoint(bomb)


@pytest.mark.parametrize("size", [(2160, 3840), (97, 131), (24, 32), (7, 5)])
def test_labels_upsampled_in_bands_are_the_full_upsampling_argmax(size):
    """A 4K camera took 1.9 GB per frame for K x H x W upsampled logits; the bands give the same
    labels (float rounding may flip a tie)."""
    import torch.nn.functional as F

    from anyseg_model.inference import upsampled_argmax

    low = torch.randn(1, 25, 24, 32, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(low, size=size, mode="bilinear", align_corners=False)[0].argmax(0)
    assert (upsampled_argmax(low, size) == ref).float().mean() >= 0.99999
