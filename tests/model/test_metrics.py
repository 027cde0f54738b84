"""Confusion matrix, IoU and both mIoU conventions against hand-computed values."""

import math

import numpy as np
import pytest

from anyseg_model.metrics import SubsetScores, confusion_matrix, iou, miou


def test_confusion_and_iou_by_hand():
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 1, 0]])
    c = confusion_matrix(pred, target, num_classes=4)
    expected = np.zeros((4, 4), int)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 1] = 1, 1, 2, 1
    np.testing.assert_array_equal(c, expected)
    # class 0: TP 1, FP 0, FN 1 -> 1/2; class 1: TP 2, FP 2, FN 0 -> 1/2; class 2: 0/1; class 3: NaN
    v = iou(c)
    np.testing.assert_allclose(v[:3], [0.5, 0.5, 0.0])
    assert math.isnan(v[3])
    assert miou(c) == pytest.approx(1 / 3)
    assert miou(c, nan_as_zero=True) == pytest.approx(0.25)


def test_bad_shapes_and_ids():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix(np.full((2, 2), 5), np.zeros((2, 2)), 3)


def test_subset_scores_json_layout_and_means():
    s = SubsetScores(["a", "b"])
    t = np.array([0, 0, 1, 1])
    s.add(("lidar", "rgb"), np.array([0, 0, 1, 1]), t)  # perfect
    s.add("rgb", np.array([0, 1, 1, 1]), t)  # a: 1/2, b: 2/3
    d = s.to_dict()
    assert list(d["subsets"]) == ["rgb", "rgb+lidar"]  # canonical spelling and order
    assert d["subsets"]["rgb+lidar"]["miou"] == 100.0
    assert d["subsets"]["rgb"]["per_class_iou"] == {"a": 50.0, "b": 66.67}
    assert d["mean_miou"] == pytest.approx((100 + 58.33) / 2, abs=0.01)
    assert d["classes"] == ["a", "b"]
    assert "| rgb+lidar | 100.00 | 100.00 |" in s.table()
