"""evaluate_bag's Markdown report, PNG plots (matplotlib) and overlay images."""

import pathlib

import numpy as np


def _fmt(value, digits=3):
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def _label(metrics, class_id):
    name = metrics.get('labels', {}).get(class_id)
    return f'{class_id} ({name})' if name else class_id


def plot_per_class(metrics, path):
    """Plot grouped bars: precision, recall and F1 per class."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    labels = list(metrics['per_class'])
    names = [_label(metrics, label) for label in labels]
    fig, axis = plt.subplots(figsize=(max(5, 1.2 * len(labels) + 2), 3.5))
    x = np.arange(len(labels))
    for offset, key in ((-0.27, 'precision'), (0.0, 'recall'), (0.27, 'f1')):
        axis.bar(x + offset, [metrics['per_class'][k][key] for k in labels], 0.26, label=key)
    axis.set_xticks(x, names, rotation=20, ha='right')
    axis.set_ylim(0, 1.05)
    axis.set_title(f'Detections vs golden (IoU >= {metrics["iou_threshold"]})')
    axis.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_latency(rows, path_hist, path_timeline):
    """Latency histogram and timeline per camera; False when no latency was recorded."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    by_camera = {}
    for row in rows:
        if row['latency_ms'] is not None:
            by_camera.setdefault(row['camera'], []).append((row['stamp_ns'], row['latency_ms']))
    if not by_camera:
        return False
    fig, axis = plt.subplots(figsize=(6, 3.5))
    axis.hist([[v for _, v in pts] for pts in by_camera.values()], bins=40,
              label=list(by_camera), stacked=True)
    axis.set_xlabel('latency (ms): output arrival - input arrival at the recorder')
    axis.set_ylabel('frames')
    axis.legend()
    fig.tight_layout()
    fig.savefig(path_hist, dpi=100)
    plt.close(fig)
    fig, axis = plt.subplots(figsize=(7, 3.5))
    start = min(s for pts in by_camera.values() for s, _ in pts)
    for camera, pts in by_camera.items():
        axis.plot([(s - start) / 1e9 for s, _ in pts], [v for _, v in pts], '.-', label=camera,
                  markersize=3, linewidth=0.7)
    axis.set_xlabel('frame stamp (s from first frame)')
    axis.set_ylabel('latency (ms)')
    axis.legend()
    fig.tight_layout()
    fig.savefig(path_timeline, dpi=100)
    plt.close(fig)
    return True


def markdown(metrics, failures, tolerances, plots, overlays=()):
    """Return the report as Markdown text."""
    lines = ['# Perception outputs vs golden', '',
             f'- outputs: `{metrics["outputs"]}` (bag status: {metrics["outputs_status"] or "-"})',
             f'- golden: `{metrics["golden"]}`',
             f'- result: **{"FAIL" if failures else "PASS"}**', '']
    if failures:
        lines += ['Exceeded tolerances:', ''] + [f'- {f}' for f in failures] + ['']
    lines += ['| metric | value |', '|---|---|']
    for key in ('frames_golden', 'frames_covered', 'coverage', 'frames_unexpected', 'tp', 'fp',
                'fn', 'precision', 'recall', 'f1', 'mask_iou', 'mask_iou_min',
                'mean_matched_box_iou', 'max_score_diff'):
        lines.append(f'| {key} | {_fmt(metrics[key], 4)} |')
    lines += ['', '## Tolerances', '', '| tolerance | limit |', '|---|---|']
    for key, value in vars(tolerances).items():
        lines.append(f'| {key} | {_fmt(value)} |')
    lines += ['', '## Per class', '', '| class | tp | fp | fn | precision | recall | F1 |',
              '|---|---|---|---|---|---|---|']
    for label, c in metrics['per_class'].items():
        lines.append(f'| {_label(metrics, label)} | {c["tp"]} | {c["fp"]} | {c["fn"]} | '
                     f'{_fmt(c["precision"])} | {_fmt(c["recall"])} | {_fmt(c["f1"])} |')
    lines += ['', '## Per camera', '', '| camera | golden frames | with output | with mask |',
              '|---|---|---|---|']
    for camera, c in metrics['per_camera'].items():
        lines.append(f'| {camera} | {c["golden"]} | {c["covered"]} | {c["masks"]} |')
    latency = metrics['latency_ms']
    lines += ['', '## Latency', '']
    if latency:
        lines += ['Output arrival minus input arrival, both at the recorder (ms):', '',
                  '| frames | p50 | p90 | p99 | max | mean |', '|---|---|---|---|---|---|',
                  f'| {latency["count"]} | {_fmt(latency["p50"], 1)} | {_fmt(latency["p90"], 1)}'
                  f' | {_fmt(latency["p99"], 1)} | {_fmt(latency["max"], 1)} | '
                  f'{_fmt(latency["mean"], 1)} |']
    else:
        lines.append('Not recorded (offline outputs, or a recording without input arrivals).')
    if metrics['diagnostics']:
        lines += ['', '## Node diagnostics (last message per status)', '']
        for name, values in metrics['diagnostics'].items():
            shown = ', '.join(f'{k}={v}' for k, v in values.items()
                              if k.startswith('frames_') or k.startswith('errors.'))
            lines.append(f'- {name}: {shown}')
    lines += [''] + [f'![{pathlib.Path(p).stem}]({pathlib.Path(p).name})'
                     for p in list(plots) + list(overlays)]
    return '\n'.join(lines) + '\n'


def render_overlays(input_bag, outputs, folder, count=4):
    """Write `count` PNGs (evenly spaced frames) of outputs drawn over the input frames."""
    import cv2

    from dali_trt_ros.bags import messages
    from dali_trt_ros.bags.io import camera_namespace, deserialize, open_reader, \
        select_connections
    from dali_trt_ros.decoders.drawing import draw_detections, overlay, voc_palette
    from dali_trt_ros.decoders.results import Detections
    from dali_trt_ros.preprocess.inputs import prepare_frame
    from dali_trt_ros.preprocess.inputs import decode_rgb

    keys = sorted(k for k, v in outputs.frames.items() if v.detections is not None)
    if not keys or count <= 0:
        return []
    wanted = {keys[int(i)] for i in np.linspace(0, len(keys) - 1, min(count, len(keys)))}
    written = []
    reader = open_reader(input_bag)
    try:
        for connection, timestamp, data in reader.messages(select_connections(reader)):
            msg = deserialize(connection, data, reader.path, timestamp)
            key = (camera_namespace(connection.topic), messages.stamp_ns(msg.header))
            if key not in wanted:
                continue
            prepared = prepare_frame(messages.frame_of(msg))
            rgb = decode_rgb(prepared)
            item = outputs.frames[key]
            if item.mask is not None and item.mask.shape == rgb.shape[:2]:
                rgb = overlay(rgb, item.mask, voc_palette())
            rows = item.detections
            found = Detections(np.array([r[2:6] for r in rows], np.float32).reshape(-1, 4),
                               np.array([r[1] for r in rows], np.float32),
                               np.array([int(r[0]) if r[0].isdigit() else 0 for r in rows]),
                               [outputs.labels.get(r[0], r[0]) for r in rows])
            image = draw_detections(rgb, found)
            path = pathlib.Path(folder) / (f'overlay_{key[0].strip("/").replace("/", "_")}_'
                                           f'{key[1]}.png')
            cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))
            written.append(str(path))
    finally:
        reader.close()
    return written
