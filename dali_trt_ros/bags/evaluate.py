"""Outputs vs golden: per-frame detection matching, P/R/F1 per class, mask IoU, coverage, latency.

Detection metrics are computed on the golden frames that have an output; frames without one are
counted by ``coverage`` (never skipped silently). A detection matches a golden one of the same
label with IoU >= ``iou_threshold`` (greedy, golden boxes by descending score).
"""

import collections
import dataclasses

import numpy as np


@dataclasses.dataclass
class Tolerances:
    """Limits a run must meet; None disables one."""

    min_precision: float = None
    min_recall: float = None
    min_f1: float = 0.9
    min_mask_iou: float = 0.9
    min_coverage: float = 0.95
    max_score_diff: float = None
    max_latency_p99_ms: float = None

    def check(self, metrics):
        """Return a list of violated tolerances as sentences (empty: all met)."""
        limits = [('min_precision', metrics['precision'], '>='),
                  ('min_recall', metrics['recall'], '>='),
                  ('min_f1', metrics['f1'], '>='),
                  ('min_mask_iou', metrics['mask_iou'], '>='),
                  ('min_coverage', metrics['coverage'], '>='),
                  ('max_score_diff', metrics['max_score_diff'], '<='),
                  ('max_latency_p99_ms', (metrics['latency_ms'] or {}).get('p99'), '<=')]
        failures = []
        for name, value, sense in limits:
            limit = getattr(self, name)
            if limit is None:
                continue
            flag = '--' + name.replace('_', '-')
            if value is None:
                if name != 'min_mask_iou' or metrics['golden_masks']:
                    failures.append(f'{name}: no value to check ({flag} {limit}); the outputs '
                                    'lack what it measures')
                continue
            if (sense == '>=' and value < limit) or (sense == '<=' and value > limit):
                failures.append(f'{name}: {value:.4g} is {"below" if sense == ">=" else "above"}'
                                f' {flag} {limit:g}')
        return failures


def box_iou(a, b):
    """Return the IoU of two x1, y1, x2, y2 boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_frame(golden, output, iou_threshold):
    """Greedy match of one frame's rows; return (matches [(g, o, iou)], unmatched g, o)."""
    order = sorted(range(len(golden)), key=lambda i: -golden[i][1])
    free = set(range(len(output)))
    matches = []
    for g in order:
        best, best_iou = None, iou_threshold
        for o in free:
            if output[o][0] != golden[g][0]:
                continue
            iou = box_iou(golden[g][2:6], output[o][2:6])
            if iou >= best_iou:
                best, best_iou = o, iou
        if best is not None:
            free.discard(best)
            matches.append((g, best, best_iou))
    matched_g = {g for g, _, _ in matches}
    return matches, [g for g in range(len(golden)) if g not in matched_g], sorted(free)


def mask_iou(golden, output):
    """Mean IoU over the classes present in either mask (None when sizes differ)."""
    if golden.shape != output.shape:
        return None
    ious = []
    for cls in np.union1d(np.unique(golden), np.unique(output)):
        g, o = golden == cls, output == cls
        union = np.count_nonzero(g | o)
        ious.append(np.count_nonzero(g & o) / union)
    return float(np.mean(ious)) if ious else 1.0


def _prf(tp, fp, fn):
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def percentiles(values):
    """p50/p90/p99/max/mean of a list (ms), None when empty."""
    if not values:
        return None
    array = np.asarray(values, np.float64)
    return {'count': int(array.size), 'p50': float(np.percentile(array, 50)),
            'p90': float(np.percentile(array, 90)), 'p99': float(np.percentile(array, 99)),
            'max': float(array.max()), 'mean': float(array.mean())}


def evaluate(golden, outputs, iou_threshold=0.5):
    """Compare two OutputSets; return the metrics dict (JSON-friendly) and per-frame rows."""
    counts = collections.defaultdict(lambda: [0, 0, 0])  # label -> tp, fp, fn
    per_camera = collections.defaultdict(lambda: {'golden': 0, 'covered': 0, 'masks': 0})
    frame_rows, mask_ious, score_diffs, box_ious, latencies = [], [], [], [], []
    golden_masks = 0
    for key in sorted(golden.frames):
        expected = golden.frames[key]
        got = outputs.frames.get(key)
        camera = per_camera[key[0]]
        camera['golden'] += 1
        golden_masks += expected.mask is not None
        row = {'camera': key[0], 'stamp_ns': key[1], 'covered': False, 'tp': 0, 'fp': 0,
               'fn': len(expected.detections or []), 'mask_iou': None, 'latency_ms': None}
        frame_rows.append(row)
        if got is None or got.detections is None:
            continue
        camera['covered'] += 1
        row['covered'] = True
        matches, missed, extra = match_frame(expected.detections, got.detections,
                                             iou_threshold)
        for g, o, iou in matches:
            counts[expected.detections[g][0]][0] += 1
            score_diffs.append(abs(expected.detections[g][1] - got.detections[o][1]))
            box_ious.append(iou)
        for o in extra:
            counts[got.detections[o][0]][1] += 1
        for g in missed:
            counts[expected.detections[g][0]][2] += 1
        row.update(tp=len(matches), fp=len(extra), fn=len(missed))
        if expected.mask is not None and got.mask is not None:
            camera['masks'] += 1
            row['mask_iou'] = mask_iou(expected.mask, got.mask)
            if row['mask_iou'] is not None:
                mask_ious.append(row['mask_iou'])
        if got.input_arrival_ns is not None and got.output_arrival_ns is not None:
            row['latency_ms'] = (got.output_arrival_ns - got.input_arrival_ns) / 1e6
            latencies.append(row['latency_ms'])
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    precision, recall, f1 = _prf(tp, fp, fn)
    per_class = {}
    for label, (ctp, cfp, cfn) in sorted(counts.items()):
        p, r, f = _prf(ctp, cfp, cfn)
        per_class[label] = {'tp': ctp, 'fp': cfp, 'fn': cfn, 'precision': p, 'recall': r,
                            'f1': f}
    total = len(golden.frames)
    covered = sum(c['covered'] for c in per_camera.values())
    unexpected = sum(1 for k, v in outputs.frames.items()
                     if k not in golden.frames and v.detections is not None)
    names = dict(golden.labels, **outputs.labels)
    metrics = {
        'labels': {label: names[label] for label in per_class if label in names},
        'golden': golden.source, 'outputs': outputs.source, 'outputs_status': outputs.status,
        'iou_threshold': iou_threshold, 'frames_golden': total, 'frames_covered': covered,
        'frames_unexpected': unexpected, 'coverage': covered / total if total else None,
        'tp': tp, 'fp': fp, 'fn': fn, 'precision': precision, 'recall': recall, 'f1': f1,
        'per_class': per_class, 'per_camera': dict(per_camera),
        'golden_masks': golden_masks,
        'mask_iou': float(np.mean(mask_ious)) if mask_ious else None,
        'mask_iou_min': float(np.min(mask_ious)) if mask_ious else None,
        'max_score_diff': float(max(score_diffs)) if score_diffs else None,
        'mean_matched_box_iou': float(np.mean(box_ious)) if box_ious else None,
        'latency_ms': percentiles(latencies),
        'diagnostics': outputs.diagnostics,
    }
    return metrics, frame_rows
