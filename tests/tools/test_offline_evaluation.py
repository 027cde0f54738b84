"""Offline evaluation of a bag: decode + sync + predict + score, against hand-computed numbers."""

from types import SimpleNamespace

import numpy as np
import pytest

from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_tools.bag import BagError, parse_drop, read_bag
from anyseg_tools.scoring import FrameResult, Scorer, run_offline

from .bagtools import camera_info, image, write_bag

H, W = 6, 8
MS = 1_000_000
T0 = 1_700_000_000 * 10**9  # a realistic epoch stamp


def _gt() -> np.ndarray:
    gt = np.zeros((H, W), np.uint8)
    gt[:, W // 2 :] = 1  # left half class 0, right half class 1
    gt[0, 0] = 255  # one ignored pixel
    return gt


@pytest.fixture(scope="module")
def tiny_bag(tmp_path_factory):
    """1 s at 20 Hz: rgb + depth (2 ms later) + ground truth, camera_info once."""
    msgs = [("/rgb/camera_info", T0, camera_info(T0, W, H))]
    for i in range(20):
        t = T0 + i * 50 * MS
        msgs += [
            ("/rgb/image", t + MS, image(t, np.full((H, W, 3), 100, np.uint8), "rgb8")),
            (
                "/depth/image",
                t + 3 * MS,
                image(t + 2 * MS, np.full((H, W), 5000, np.uint16), "16UC1"),
            ),
            ("/ground_truth/labels", t + MS, image(t, _gt(), "mono8")),
        ]
    return write_bag(tmp_path_factory.mktemp("bag") / "tiny", msgs)


CLASSES = ["zero", "one"]


def settings(modalities):
    """(SyncSettings, InputSettings): what run_offline takes; no checkpoint needed."""
    values = {"modalities": modalities, "slop_ms": 10.0, "wait_ms": 20.0, "timeout_ms": 120.0}
    return SyncSettings.from_parameters(values), InputSettings.from_parameters(values)


def fake_predict(arrays):
    """With RGB: right on class 1 everywhere. Without: class 0 everywhere."""
    shape = next(a for a in arrays.values()).shape[:2]
    labels = np.full(shape, 1 if "rgb" in arrays else 0, np.uint8)
    return SimpleNamespace(
        labels=labels, modalities=tuple(m for m in ("rgb", "depth") if m in arrays)
    )


def test_offline_run_scores_subsets_by_hand(tiny_bag):
    bag = read_bag(tiny_bag)
    assert bag.error is None and len(bag.records) == 61
    run = run_offline(
        bag,
        fake_predict,
        *settings(["rgb", "depth"]),
        CLASSES,
        drops=[parse_drop("rgb:0.3-0.6")],
        tolerance_ns=10 * MS,
    )
    used = [f.modalities for f in run.frames]
    assert len(run.frames) == 20  # one frame per depth/rgb pair, RGB-less ones anchored on depth
    assert used.count(("rgb", "depth")) + used.count(("depth",)) == 20
    assert used.count(("depth",)) == 6  # stamps 0.30 .. 0.55 s have no RGB
    assert {f.anchor for f in run.frames if f.modalities == ("depth",)} == {"depth"}

    assert len(run.scorer.per_frame) == 20  # every frame paired with its labels
    d = run.scorer.scores.to_dict()
    # rgb+depth: predicts 1 everywhere. Per frame 47 valid pixels: 23 class 0 (one ignored),
    # 24 class 1.
    # IoU(0) = 0, IoU(1) = 24 / 47. depth alone: predicts 0: IoU(0) = 23 / 47, IoU(1) = 0.
    assert d["subsets"]["rgb+depth"]["per_class_iou"] == {
        "zero": 0.0,
        "one": round(100 * 24 / 47, 2),
    }
    assert d["subsets"]["depth"]["per_class_iou"] == {"zero": round(100 * 23 / 47, 2), "one": 0.0}
    assert d["subsets"]["depth"]["pixels"] == 6 * 47
    # The RGB outage shows in the health events: stale after the timeout, alive on return.
    # (After the recording ends every sensor goes stale too; that is not part of the run.)
    rgb_events = [state for t, m, state in run.health_events if m == "rgb" and t <= run.duration_s]
    assert rgb_events == ["alive", "stale", "alive"]


def test_ground_truth_matching_tolerance(tiny_bag):
    """Depth-anchored frames are 2 ms off their labels: paired within 3 ms, not within 1 ms."""
    for tolerance_ms, scored in ((1, 0), (3, 20)):
        run = run_offline(
            read_bag(tiny_bag),
            fake_predict,
            *settings(["depth"]),
            CLASSES,
            tolerance_ns=tolerance_ms * MS,
        )
        assert all(f.anchor == "depth" for f in run.frames) and len(run.frames) == 20
        assert len(run.scorer.per_frame) == scored


def test_scorer_pairs_either_order_exactly_and_forgets():
    gt0, gt1 = np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8)
    scorer = Scorer(CLASSES, tolerance_ns=30 * MS, keep=2)
    frame = FrameResult(T0 + 20 * MS, "depth", ("depth",), gt1.copy())
    scorer.add_ground_truth(T0, gt0)  # 20 ms away: within tolerance, but a nearer one may come
    scorer.add_frame(frame)
    assert not scorer.per_frame and frame.labels is not None  # undecided, labels kept
    scorer.add_ground_truth(
        T0 + 50 * MS, gt1
    )  # 30 ms away: gt0 stays nearest, none nearer can come
    assert scorer.per_frame == {T0 + 20 * MS: 0.0} and frame.labels is None  # decided, let go
    late = FrameResult(T0 + 45 * MS, "rgb", ("rgb",), gt1.copy())
    scorer.add_frame(late)
    scorer.finish()  # no more ground truth: the nearest known (T0 + 50 ms) it is
    assert scorer.per_frame[T0 + 45 * MS] == 100.0
    for k in range(5):
        scorer.add_ground_truth(T0 + k * 100 * MS, gt0)
    assert len(scorer._gt) == 2  # bounded memory


def test_truncated_bag_gives_the_readable_part_and_the_reason(tmp_path):
    """A recording cut short (no MCAP summary) still yields its complete chunks (~1 MB each)."""
    big = np.zeros((240, 320, 3), np.uint8)  # 230 kB per message: 40 messages span several chunks
    full = write_bag(
        tmp_path / "full",
        [("/rgb/image", T0 + i * MS, image(T0 + i * MS, big, "rgb8")) for i in range(40)],
    )
    mcap = next(full.glob("*.mcap"))
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "metadata.yaml").write_text((full / "metadata.yaml").read_text())
    (cut / mcap.name).write_bytes(mcap.read_bytes()[: mcap.stat().st_size * 2 // 3])
    bag = read_bag(cut)
    assert bag.error is not None and "stopped" in bag.error
    assert 0 < len(bag.records) < 40
    assert [r.log_ns for r in bag.records] == [T0 + i * MS for i in range(len(bag.records))]
    run = run_offline(bag, fake_predict, *settings(["rgb"]), CLASSES)
    assert len(run.frames) == len(bag.records)  # the readable part is evaluated


def test_unreadable_bags_and_bad_drops(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        read_bag(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(BagError, match="cannot be opened"):
        read_bag(tmp_path / "junk")
    for text, msg in (
        ("lidar", "MODALITY:START-END"),
        ("radar:1-2", "unknown modality"),
        ("rgb:3-1", "ends before"),
    ):
        with pytest.raises(ValueError, match=msg):
            parse_drop(text)
    assert parse_drop("rgb:20-end").end_s == float("inf")


def test_outage_timeline():
    from anyseg_tools.report import outage_timeline

    events = [
        (0.0, "rgb", "alive"),
        (0.0, "lidar", "alive"),  # start-up: offline -> alive is no outage
        (2.0, "lidar", "stale"),
        (3.5, "lidar", "alive"),
        (4.0, "rgb", "stale"),  # out until the end of the run
        (9.0, "lidar", "stale"),  # after the recording ended: not part of the run
        (0.5, "event", "offline"),  # never came at all
    ]
    assert outage_timeline(events, end_s=6.0) == {
        "rgb": [[4.0, 6.0]],
        "event": [[0.0, 6.0]],
        "lidar": [[2.0, 3.5]],
    }


def test_concat_bags_plays_parts_back_to_back(tiny_bag, tmp_path):
    from anyseg_tools.bag import concat_bags, deserialize, header_stamp_ns

    out = concat_bags([tiny_bag, tiny_bag], tmp_path / "two", gap_s=0.1)
    one, two = read_bag(tiny_bag), read_bag(out)
    assert len(two.records) == 2 * len(one.records)
    logs = [r.log_ns for r in two.records]
    assert logs == sorted(logs)
    span = one.records[-1].log_ns - one.records[0].log_ns
    second = two.records[len(one.records)]
    assert second.log_ns == one.records[0].log_ns + span + 100 * MS
    # Header stamps moved with the log times: the second copy's first label is one span + gap later.
    labels = [deserialize(r) for r in two.records if r.topic == "/ground_truth/labels"]
    assert header_stamp_ns(labels[20]) - header_stamp_ns(labels[0]) == span + 100 * MS


def test_a_robot_like_recording_scores_as_the_raw_one(tmp_path):
    """jpeg + compressedDepth + evt3 packets + an organised Ouster cloud + /tf_static: evaluated
    with no calibration file and no parameter, it scores the raw recording's mIoU within what
    the compression costs (the shipped checkpoint, the same drive)."""
    from pathlib import Path

    from anyseg_sim import SyntheticWorld, WorldConfig, write_bag
    from anyseg_sim.files import write_calibration
    from anyseg_tools.evaluate import evaluate

    def world():
        return SyntheticWorld(WorldConfig(width=128, height=96, seed=5))

    (tmp_path / "raw").mkdir()
    write_bag(tmp_path / "raw" / "bag", world(), frames=20)
    write_calibration(tmp_path / "raw" / "calibration.yaml", world())
    write_bag(tmp_path / "robot", world(), frames=20, robot=True)
    ckpt = Path(__file__).resolve().parents[2] / "checkpoints" / "anyseg_tiny_synthetic.pt"
    reports = {}
    for name, bag in (("raw", tmp_path / "raw" / "bag"), ("robot", tmp_path / "robot")):
        ev = evaluate(bag, ckpt, tmp_path / f"out_{name}", device="cpu", on_line=lambda _: None)
        reports[name] = ev.report
    raw, robot = reports["raw"], reports["robot"]
    assert robot["decode_errors"] == {} and robot["frames_scored"] == raw["frames_scored"] > 0
    full = "rgb+depth+event+lidar"  # LiDAR (extrinsic from tf) and every other sensor used
    assert robot["frames_per_subset"][full] == raw["frames_per_subset"][full] > 0
    for subset in set(raw["subsets"]) & set(robot["subsets"]):
        assert abs(robot["subsets"][subset]["miou"] - raw["subsets"][subset]["miou"]) < 2.0
