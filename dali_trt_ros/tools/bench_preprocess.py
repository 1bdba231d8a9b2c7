"""Benchmark preprocessing backends: DALI GPU vs DALI CPU vs the OpenCV reference.

Input: a real photograph (skimage ``coffee``) enlarged to 720p and 1080p, as JPEG (quality 90)
and as raw rgb8 frames. Output: the SSD input (300x300 stretch, linear + antialias, NCHW float32,
(x - 127.5) / 127.5), copied back to host memory, as a node would hand it to a CPU engine.
Backends: ``dali-gpu``, ``dali-cpu``, ``opencv`` (the package's CPU path, which follows DALI's
filters: Pillow for antialiased shrinking) and ``opencv-fair`` (what a competent OpenCV user
writes: ``cv2.imdecode`` + ``cv2.resize`` with INTER_AREA when antialiasing, INTER_LINEAR
otherwise, + ``cv2.dnn.blobFromImages``, one thread per frame). Goal ratios use ``opencv-fair``.
Per-frame latency is the wall time of one ``run`` divided by the batch size; throughput is
frames per second over all timed runs. Prints a table and the issue's goal checks; ``--out``
also writes results.json and results.md there.

Run: ``bench_preprocess --out /tmp/bench`` (``--help`` for the options).
"""

import argparse
import json
import os
import platform
import sys
import time
from types import SimpleNamespace

import numpy as np

SIZES = {'720p': (1280, 720), '1080p': (1920, 1080)}
GOAL_MS_BATCH1 = 2.5
GOAL_SPEEDUP_BATCH1 = 8.0
GOAL_SPEEDUP_BATCH4 = 8.0


def benchmark_spec(max_batch, antialias=True):
    """Return the spec of the SSD input that the goal figures are stated for."""
    from dali_trt_ros.preprocess.spec import InputSpec, PreprocessSpec

    ssd = InputSpec('normalized_input_image_tensor', 300, 300, resize='stretch',
                    interpolation='linear', antialias=antialias, color='RGB',
                    mean=127.5, std=127.5, layout='NCHW', dtype='float32')
    return PreprocessSpec((ssd,), max_batch=max_batch)


def source_photo():
    """Return skimage's coffee photo, or a textured synthetic image where skimage is missing."""
    try:
        from skimage import data
        return data.coffee(), 'skimage coffee photo'
    except ImportError:
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:400, 0:600]
        base = np.stack([x * 255 // 600, y * 255 // 400, (x + y) % 256], -1)
        noise = rng.integers(0, 40, (400, 600, 3))
        return np.clip(base + noise, 0, 255).astype(np.uint8), 'synthetic image (no skimage)'


def make_frames(size_name, kind, batch):
    """Batch of identical-content frames (a real photo enlarged to the size)."""
    import cv2

    from dali_trt_ros.preprocess.inputs import EncodedFrame, RawFrame

    width, height = SIZES[size_name]
    rgb = cv2.resize(source_photo()[0], (width, height), interpolation=cv2.INTER_CUBIC)
    if kind == 'jpeg':
        ok, encoded = cv2.imencode('.jpg', rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        frame = EncodedFrame(encoded.tobytes(), 'jpeg')
    else:
        frame = RawFrame(rgb.tobytes(), width, height, 'rgb8', width * 3)
    return [frame] * batch


class FairOpenCV:
    """The OpenCV baseline at its best: its own fast paths, a thread per frame of a batch.

    Not the package's CPU path (which matches DALI's antialiased filter with Pillow): this is
    the obvious alternative a user would write, to compare DALI against.
    """

    backend = 'opencv-fair'

    def __init__(self, spec, num_threads=None):
        from concurrent.futures import ThreadPoolExecutor
        [self.input] = spec.inputs
        self._pool = ThreadPoolExecutor(num_threads or min(os.cpu_count() or 1, 8))

    def _resized_rgb(self, frame):
        import cv2
        if hasattr(frame, 'encoding'):
            image = np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 3)
        else:
            image = cv2.imdecode(np.frombuffer(frame.data, np.uint8),
                                 cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        shrinking = image.shape[1] > self.input.width or image.shape[0] > self.input.height
        interpolation = cv2.INTER_AREA if self.input.antialias and shrinking \
            else cv2.INTER_LINEAR
        resized = cv2.resize(image, (self.input.width, self.input.height),
                             interpolation=interpolation)
        # Swap channels after shrinking (300x300), not before: 23x fewer pixels.
        return resized if hasattr(frame, 'encoding') else cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)

    def run(self, frames):
        """Return the (N, 3, H, W) float32 batch, (x - mean) / std, RGB."""
        import cv2
        resized = list(self._pool.map(self._resized_rgb, frames)) if len(frames) > 1 \
            else [self._resized_rgb(frames[0])]
        mean, std = self.input.mean, self.input.std
        # blobFromImages subtracts one mean per channel and multiplies by one scale.
        blob = cv2.dnn.blobFromImages(resized, scalefactor=1.0 / std[0], mean=tuple(mean),
                                      swapRB=False, crop=False)
        return SimpleNamespace(errors={}, tensors={self.input.name: blob})


def make_backend(name, spec, device_id, num_threads):
    """Instantiate one backend by benchmark name; (None, reason) when it cannot run here."""
    from dali_trt_ros.preprocess.dali_backend import DaliPreprocessor
    from dali_trt_ros.preprocess.factory import detect_dali_mode
    from dali_trt_ros.preprocess.opencv_backend import OpenCVPreprocessor

    if name == 'opencv-fair':
        return FairOpenCV(spec, num_threads=num_threads), ''
    if name == 'opencv':
        return OpenCVPreprocessor(spec, num_threads=num_threads), ''
    if name == 'dali-cpu':
        return DaliPreprocessor(spec, None, mode='cpu', num_threads=num_threads), ''
    mode, reason = detect_dali_mode(device_id)
    if mode not in ('gpu', 'gpu-cpudecode'):
        return None, reason
    return DaliPreprocessor(spec, device_id, mode=mode, num_threads=num_threads), reason


def time_case(preprocessor, frames, repeats, warmup, max_seconds):
    """Per-run wall times in seconds (after warm-up), stopping early after max_seconds."""
    for _ in range(warmup):
        result = preprocessor.run(frames)
        if result.errors:
            raise RuntimeError(f'benchmark frames failed: {result.errors}')
    times = []
    started = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        preprocessor.run(frames)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - started > max_seconds and len(times) >= 5:
            break
    return times


def summarize(times, batch):
    """Median/p90 per-frame latency (ms) and throughput (frames/s)."""
    per_frame_ms = np.asarray(times) * 1000.0 / batch
    return {'runs': len(times),
            'median_ms': float(np.median(per_frame_ms)),
            'p90_ms': float(np.percentile(per_frame_ms, 90)),
            'fps': float(batch * len(times) / sum(times))}


def goal_checks(rows):
    """Check the issue's goal figures for 1080p JPEG against the measured rows."""
    def median(backend, batch):
        for row in rows:
            if (row['backend'].startswith(backend) and row['size'] == '1080p'
                    and row['kind'] == 'jpeg' and row['batch'] == batch):
                return row['median_ms']
        return None

    checks = []
    baseline = 'opencv-fair' if any(r['backend'] == 'opencv-fair' for r in rows) else 'opencv'
    gpu1, cv1, gpu4, cv4 = (median('dali-gpu', 1), median(baseline, 1),
                            median('dali-gpu', 4), median(baseline, 4))
    checks.append(('DALI GPU 1080p JPEG batch 1 <= %.1f ms/frame' % GOAL_MS_BATCH1,
                   gpu1, None if gpu1 is None else gpu1 <= GOAL_MS_BATCH1))
    for label, gpu, cv, goal in (('batch 1', gpu1, cv1, GOAL_SPEEDUP_BATCH1),
                                 ('batch 4', gpu4, cv4, GOAL_SPEEDUP_BATCH4)):
        ratio = None if gpu is None or cv is None else cv / gpu
        checks.append((f'{baseline}/DALI-GPU per-frame ratio at {label} >= {goal:.0f}x', ratio,
                       None if ratio is None else ratio >= goal))
    return checks


def format_markdown(rows, checks, notes):
    """Results as a markdown table plus goal lines."""
    lines = ['| backend | size | input | batch | median ms/frame | p90 ms/frame | frames/s |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['backend']} | {r['size']} | {r['kind']} | {r['batch']} | "
                     f"{r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['fps']:.1f} |")
    lines.append('')
    for label, value, met in checks:
        shown = 'not measured' if value is None else f'{value:.2f}'
        verdict = 'n/a' if met is None else ('MET' if met else 'NOT MET')
        lines.append(f'- {label}: {shown} -> {verdict}')
    lines.extend(f'- note: {n}' for n in notes)
    return '\n'.join(lines)


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backends', default='dali-gpu,dali-cpu,opencv,opencv-fair',
                        help='comma list of dali-gpu, dali-cpu, opencv, opencv-fair')
    parser.add_argument('--sizes', default='720p,1080p', help='comma list of 720p, 1080p')
    parser.add_argument('--kinds', default='jpeg,raw', help='comma list of jpeg, raw')
    parser.add_argument('--batches', default='1,4', help='comma list of batch sizes')
    parser.add_argument('--repeats', type=int, default=50, help='timed runs per case')
    parser.add_argument('--warmup', type=int, default=5, help='untimed runs per case')
    parser.add_argument('--max-seconds', type=float, default=10.0,
                        help='stop a case after this long (at least 5 runs)')
    parser.add_argument('--device-id', type=int, default=0, help='CUDA device for dali-gpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='worker threads per backend (default: min(cores, 4) for DALI, '
                        'min(cores, 8) for OpenCV)')
    parser.add_argument('--no-antialias', action='store_true',
                        help='resize without antialiasing (as the shipped SSD config does)')
    parser.add_argument('--out', default=None, help='folder for results.json and results.md')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the benchmark and print the table; exit 0 even when goals are missed."""
    args = parse_args(argv)
    batches = [int(b) for b in args.batches.split(',')]
    spec = benchmark_spec(max(batches), antialias=not args.no_antialias)
    rows, notes = [], [f'input: {source_photo()[1]}; antialias {not args.no_antialias}']
    for backend_name in args.backends.split(','):
        preprocessor, reason = make_backend(backend_name, spec, args.device_id, args.threads)
        if preprocessor is None:
            notes.append(f'{backend_name} skipped: {reason}')
            print(f'{backend_name}: skipped ({reason})', flush=True)
            continue
        if reason:
            notes.append(f'{preprocessor.backend}: {reason}')
        for size_name in args.sizes.split(','):
            for kind in args.kinds.split(','):
                for batch in batches:
                    frames = make_frames(size_name, kind, batch)
                    times = time_case(preprocessor, frames, args.repeats, args.warmup,
                                      args.max_seconds)
                    row = {'backend': preprocessor.backend, 'size': size_name, 'kind': kind,
                           'batch': batch, **summarize(times, batch)}
                    rows.append(row)
                    print(f"{row['backend']:>18} {size_name:>6} {kind:>5} b{batch} "
                          f"median {row['median_ms']:8.2f} ms/frame  p90 {row['p90_ms']:8.2f}"
                          f"  {row['fps']:8.1f} frames/s  ({row['runs']} runs)", flush=True)
    checks = goal_checks(rows)
    machine = f'{platform.node()} {platform.machine()}, {os.cpu_count()} cores, ' \
              f'Python {platform.python_version()}'
    notes.append(f'machine: {machine}')
    markdown = format_markdown(rows, checks, notes)
    print()
    print(markdown)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'results.json'), 'w') as stream:
            json.dump({'rows': rows, 'machine': machine, 'notes': notes,
                       'goals': [{'goal': g, 'value': v, 'met': m} for g, v, m in checks]},
                      stream, indent=2)
        with open(os.path.join(args.out, 'results.md'), 'w') as stream:
            stream.write(markdown + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
