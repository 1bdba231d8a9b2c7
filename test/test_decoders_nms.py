"""Class-wise NMS: ties, empty input, suppression boundaries, caps, and a brute-force reference."""

import numpy as np
import pytest

from dali_trt_ros.decoders.nms import batched_nms, iou_one_to_many, nms, score_order


def reference_nms(boxes, scores, classes, iou_threshold):
    """Plain per-class greedy NMS written as directly as possible, for comparison."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        suppressed = False
        for j in keep:
            if classes[j] != classes[i]:
                continue
            x1, y1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            x2, y2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            area_i = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            area_j = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            if inter / (area_i + area_j - inter) > iou_threshold:
                suppressed = True
                break
        if not suppressed:
            keep.append(i)
    return keep


def test_score_order_breaks_ties_by_index():
    assert score_order(np.array([0.5, 0.9, 0.5, 0.9, 0.1])).tolist() == [1, 3, 0, 2, 4]


def test_identical_boxes_with_tied_scores_keep_the_lowest_index():
    boxes = np.array([[0, 0, 10, 10]] * 4, dtype=np.float32)
    scores = np.array([0.7, 0.8, 0.8, 0.8], dtype=np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1]
    # Reversing the input order must pick the same physical box (now at index 2).
    assert nms(boxes[::-1], scores[::-1], 0.5).tolist() == [0]


def test_tied_scores_apart_are_all_kept_in_index_order():
    boxes = np.array([[20, 0, 30, 10], [0, 0, 10, 10], [40, 0, 50, 10]], dtype=np.float32)
    assert nms(boxes, np.full(3, 0.6), 0.5).tolist() == [0, 1, 2]


def test_empty_input():
    keep = batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5)
    assert keep.dtype == np.int64 and keep.size == 0
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


def test_all_but_the_best_suppressed():
    base = np.array([0, 0, 100, 100], dtype=np.float64)
    boxes = np.stack([base + [i, i, i, i] for i in range(10)])  # heavy mutual overlap
    scores = np.linspace(0.1, 0.9, 10)
    assert batched_nms(boxes, scores, np.zeros(10, int), 0.5).tolist() == [9]


def test_iou_exactly_at_threshold_is_kept():
    boxes = np.array([[0, 0, 2, 1], [0, 0, 1, 1]], dtype=np.float64)  # IoU = 1/2
    assert iou_one_to_many(boxes[0], boxes[1:])[0] == pytest.approx(0.5)
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.49).tolist() == [0]


def test_classes_do_not_suppress_each_other():
    boxes = np.array([[0, 0, 10, 10]] * 3, dtype=np.float64)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([2, 5, 2]), 0.5)
    assert keep.tolist() == [0, 1]


def test_max_per_class_and_max_total():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(6)], dtype=np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    classes = np.array([0, 0, 0, 1, 1, 1])
    assert batched_nms(boxes, scores, classes, 0.5, max_per_class=2).tolist() == [0, 1, 3, 4]
    assert batched_nms(boxes, scores, classes, 0.5, max_per_class=2,
                       max_total=3).tolist() == [0, 1, 3]
    assert batched_nms(boxes, scores, classes, 0.5, max_total=1).tolist() == [0]


def test_degenerate_boxes_do_not_divide_by_zero():
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10]], dtype=np.float64)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 1, 2]


@pytest.mark.parametrize('seed, count', [(0, 300), (1, 300), (2, 120), (3, 256)])
def test_matches_brute_force_reference(seed, count):
    # Up to 256 candidates take the shared-matrix path, more the per-class block path.
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (count, 2))
    wh = rng.uniform(5, 80, (count, 2))
    boxes = np.column_stack([xy, xy + wh])
    # Quantized scores force many ties.
    scores = np.round(rng.uniform(0, 1, count), 1)
    classes = rng.integers(0, 4, count)
    expected = reference_nms(boxes.tolist(), scores.tolist(), classes.tolist(), 0.45)
    assert batched_nms(boxes, scores, classes, 0.45).tolist() == expected
    capped = [i for rank, i in enumerate(expected)
              if sum(classes[j] == classes[i] for j in expected[:rank]) < 3]
    assert batched_nms(boxes, scores, classes, 0.45, max_per_class=3).tolist() == capped


def test_long_suppression_chain_and_many_blocks():
    # Each box overlaps its neighbour (IoU 7/13) but not the one after: greedy keeps every
    # other box, a chain longer than the parallel sweeps resolve.
    boxes = np.array([[3 * i, 0, 3 * i + 10, 10] for i in range(40)], dtype=np.float64)
    scores = np.linspace(1.0, 0.5, 40)
    assert nms(boxes, scores, 0.5).tolist() == list(range(0, 40, 2))
    # 700 boxes of one class span three blocks of the block-wise algorithm.
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 300, (700, 2))
    many = np.column_stack([xy, xy + rng.uniform(20, 60, (700, 2))])
    many_scores = np.round(rng.uniform(0, 1, 700), 2)
    classes = np.zeros(700, int)
    expected = reference_nms(many.tolist(), many_scores.tolist(), classes.tolist(), 0.3)
    assert batched_nms(many, many_scores, classes, 0.3).tolist() == expected
    assert batched_nms(many, many_scores, classes, 0.3, max_total=25).tolist() == expected[:25]
    assert nms(many, many_scores, 0.3, max_output=5).tolist() == expected[:5]
