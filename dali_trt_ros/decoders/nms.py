"""Greedy non-maximum suppression in NumPy, class-wise, with deterministic ties.

Candidates are visited in order of descending score; equal scores are visited in ascending
candidate index (a stable sort), so results never depend on sort implementation details. A box is
suppressed when its IoU with a kept box of the same class is strictly greater than the threshold.
"""

import numpy as np


def score_order(scores):
    """Return indices sorting ``scores`` descending, ties broken by ascending index."""
    scores = np.asarray(scores)
    # A stable ascending sort of the negated scores keeps equal scores in index order.
    return np.argsort(-scores, kind='stable')


def iou_one_to_many(box, boxes):
    """Compute the IoU of one (4,) x1, y1, x2, y2 box with each of (M, 4) boxes (empty: 0)."""
    inter_w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    inter_h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.maximum(inter_w, 0.0) * np.maximum(inter_h, 0.0)
    union = box_areas(box[None])[0] + box_areas(boxes) - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, inter / union, 0.0)


# Boxes handled per matrix: 128 x 128 overlap tests stay cheap, and work stops block-wise once
# enough boxes are kept (measured fastest of 64/128/256 on SSD-like candidate sets).
BLOCK_SIZE = 128
# Up to this many candidates, all classes share one matrix (masked to same-class pairs), which
# avoids a Python loop over classes for the common, post-threshold case.
SHARED_MATRIX_LIMIT = 256
# Simultaneous (Jacobi) sweeps tried before falling back to one sequential sweep.
MAX_PARALLEL_SWEEPS = 8


def box_areas(boxes):
    """Compute the areas of (N, 4) x1, y1, x2, y2 boxes; inverted boxes count as empty."""
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)


def overlap_between(first, second, iou_threshold):
    """Boolean (M, K) matrix: IoU of first[i] and second[j] exceeds the threshold."""
    inter_w = np.minimum.outer(first[:, 2], second[:, 2])
    inter_w -= np.maximum.outer(first[:, 0], second[:, 0])
    np.maximum(inter_w, 0.0, out=inter_w)
    inter_h = np.minimum.outer(first[:, 3], second[:, 3])
    inter_h -= np.maximum.outer(first[:, 1], second[:, 1])
    np.maximum(inter_h, 0.0, out=inter_h)
    inter_w *= inter_h
    union = np.add.outer(box_areas(first), box_areas(second))
    union -= inter_w
    union *= iou_threshold
    return inter_w > union


def _greedy_within(suppresses):
    """Keep-mask for boxes sorted best first, given "i suppresses j" for i < j (upper triangle).

    Box j is kept iff no kept box before it suppresses it. That rule has one solution; sweeping it
    over all boxes at once from "all kept" reaches it in as many sweeps as the longest
    suppression chain (usually 2-4); long chains fall back to one exact sequential sweep.
    """
    count = suppresses.shape[0]
    keep = np.ones(count, dtype=bool)
    for _ in range(MAX_PARALLEL_SWEEPS):
        updated = ~suppresses[keep].any(axis=0)
        if np.array_equal(updated, keep):
            return keep
        keep = updated
    keep = np.ones(count, dtype=bool)
    for i in range(count):
        if keep[i]:
            keep[i + 1:] &= ~suppresses[i, i + 1:]
    return keep


def greedy_keep_sorted(boxes, iou_threshold, limit=None):
    """Return the indices greedy NMS keeps of (N, 4) boxes already sorted best first.

    Works block by block: a block first loses the boxes that already-kept boxes suppress, then
    is suppressed within itself. Stops as soon as ``limit`` boxes are kept.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    kept = np.zeros(0, dtype=np.int64)
    limit = boxes.shape[0] if limit is None else limit
    for start in range(0, boxes.shape[0], BLOCK_SIZE):
        if kept.size >= limit:
            break
        block = np.arange(start, min(start + BLOCK_SIZE, boxes.shape[0]))
        if kept.size:
            block = block[~overlap_between(boxes[kept], boxes[block], iou_threshold).any(axis=0)]
        inner = np.triu(overlap_between(boxes[block], boxes[block], iou_threshold), k=1)
        kept = np.concatenate([kept, block[_greedy_within(inner)]])
    return kept[:limit]


def nms(boxes, scores, iou_threshold, max_output=None):
    """Greedy NMS over (N, 4) x1, y1, x2, y2 boxes of one class; return kept indices, best first.

    ``max_output`` stops once that many boxes are kept.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = score_order(scores)
    return order[greedy_keep_sorted(boxes[order], iou_threshold, max_output)]


def batched_nms(boxes, scores, class_ids, iou_threshold, max_per_class=None, max_total=None):
    """Class-wise NMS: boxes of different classes never suppress each other.

    Few candidates share one overlap matrix masked to same-class pairs; many are grouped by
    class (keeping score order inside each group) and each group is suppressed on its own.
    ``max_per_class`` keeps the best N per class and ``max_total`` the
    best N overall. Returns kept indices, best first (ties: lower index first).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    order = score_order(scores)
    if order.size <= SHARED_MATRIX_LIMIT:
        keep = order[_greedy_within(_same_class_suppression(boxes[order], class_ids[order],
                                                            iou_threshold))]
        if max_per_class is not None:
            keep = keep[rank_within_class(class_ids[keep]) < max_per_class]
        return keep if max_total is None else keep[:max_total]
    # A stable sort by class keeps each class's candidates in score order.
    grouped = order[np.argsort(class_ids[order], kind='stable')]
    bounds = np.flatnonzero(np.diff(class_ids[grouped])) + 1
    # No class can contribute more than max_total boxes to the result, so stop there.
    limits = [limit for limit in (max_per_class, max_total) if limit is not None]
    per_class_limit = min(limits) if limits else None
    kept = np.zeros(boxes.shape[0], dtype=bool)
    for members in np.split(grouped, bounds):
        survivors = greedy_keep_sorted(boxes[members], iou_threshold, per_class_limit)
        kept[members[survivors]] = True
    keep = order[kept[order]]
    return keep if max_total is None else keep[:max_total]


def _same_class_suppression(sorted_boxes, sorted_classes, iou_threshold):
    """Upper-triangular "i suppresses j" matrix restricted to pairs of the same class."""
    same_class = sorted_classes[:, None] == sorted_classes[None, :]
    return np.triu(overlap_between(sorted_boxes, sorted_boxes, iou_threshold) & same_class, k=1)


def rank_within_class(class_ids):
    """For each entry, how many earlier entries have the same class id."""
    class_ids = np.asarray(class_ids)
    order = np.argsort(class_ids, kind='stable')
    sorted_ids = class_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    run_lengths = np.diff(np.r_[starts, sorted_ids.size])
    ranks = np.empty(class_ids.size, dtype=np.int64)
    ranks[order] = np.arange(sorted_ids.size) - np.repeat(starts, run_lengths)
    return ranks
