"""ONNX Runtime CUDA at its best, and whether the models really overlap (GPU machine only).

Part 1, per model and variant (fp32/fp16 weights, host or device post-processing): median ms of
one inference with (a) ``session.run`` on host arrays, (b) I/O binding on both sides (input
already on the GPU, outputs bound on the GPU, then only the small outputs copied out), and
(c) as (b) with CUDA graphs (``enable_cuda_graph``: fixed input/output addresses, replayed).
Part 2: the real PerceptionPipeline (DALI GPU -> ORT CUDA, one thread and one CUDA stream per
model) with timing CUDA events recorded on each engine's stream around every ``engine.run``:
the per-model GPU intervals of each frame, their overlap, and the chain's time with the models
concurrent vs one at a time. Writes ``ort_cuda.json`` after each step.

Run: ``python benchmarks/ort_cuda.py --out $OUT/ort_cuda`` (``--runs`` per case, default 100).
"""

import argparse
import ctypes
import json
import pathlib
import statistics
import sys
import time

import numpy as np

from cudart import cudart

MODELS = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation', 'deeplabv3_mobilenetv2_untrained')
FRAME = (1920, 1080)
DEVICE = {'type': 'cuda'}  # --device cpu: a smoke check of the logic on machines without CUDA


class Events:
    """Timing CUDA events through libcudart (ctypes), for intervals on engine streams."""

    def __init__(self):
        self.lib = cudart()

    def create(self):
        """Return a new timing event handle."""
        handle = ctypes.c_void_p()
        assert self.lib.cudaEventCreate(ctypes.byref(handle)) == 0
        return handle

    def record(self, event, stream):
        """Record ``event`` on ``stream`` (int handle, 0 = legacy default stream)."""
        assert self.lib.cudaEventRecord(event, ctypes.c_void_p(stream or 0)) == 0

    def elapsed_ms(self, start, end):
        """Milliseconds from ``start`` to ``end`` (both synchronized first)."""
        for event in (start, end):
            assert self.lib.cudaEventSynchronize(event) == 0
        value = ctypes.c_float()
        assert self.lib.cudaEventElapsedTime(ctypes.byref(value), start, end) == 0
        return value.value


def feeds_for(session, description, variant_path):
    """Host feeds for a model: a real preprocessed 1080p photo, plus the device-post inputs."""
    import cv2
    from skimage import data

    from dali_trt_ros.decoders.segmentation import source_indices
    from dali_trt_ros.models.variants import variant_metadata
    from dali_trt_ros.preprocess.geometry import FrameGeometry
    spec = description.input
    rgb = cv2.resize(data.astronaut(), FRAME)
    resized = cv2.resize(rgb, (spec['width'], spec['height']), interpolation=cv2.INTER_LINEAR)
    tensor = (resized - np.float32(spec['mean'])) / np.float32(spec['std'])
    feeds = {spec['name']: np.ascontiguousarray(tensor.transpose(2, 0, 1)[None], np.float32)}
    names = {i.name for i in session.get_inputs()}
    if 'dtr_source_rows' in names:
        meta = variant_metadata(variant_path)
        geometry = FrameGeometry.stretch(*FRAME, spec['width'], spec['height'])
        columns, rows = source_indices(geometry, int(meta['dtr_map_width']),
                                       int(meta['dtr_map_height']))
        feeds['dtr_source_rows'] = rows.astype(np.int32)
        feeds['dtr_source_columns'] = columns.astype(np.int32)
    if 'dtr_threshold' in names:
        feeds['dtr_threshold'] = np.array([0.5], np.float32)
    return feeds


def new_session(path, graph=False):
    """Return a CUDA session (TF32 off, as the package's engines)."""
    import onnxruntime as ort
    if DEVICE['type'] == 'cpu':
        if graph:
            raise RuntimeError('CUDA graphs need the CUDA provider')
        return ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    options = {'device_id': '0', 'use_tf32': '0'}
    if graph:
        options['enable_cuda_graph'] = '1'
    return ort.InferenceSession(str(path), providers=[('CUDAExecutionProvider', options),
                                                      'CPUExecutionProvider'])


def median_ms(function, runs, warmup=10):
    """Median wall ms of ``function()`` after warm-up."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def max_diff(outputs, reference):
    """Largest absolute difference over paired outputs."""
    return max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
               for a, b in zip(outputs, reference))


def bench_variant(description, postprocess, precision, runs):
    """Median ms of the three ways to run one model variant; max abs diff between them."""
    import onnxruntime as ort

    from dali_trt_ros.models.variants import prepare_variant
    path = prepare_variant(description, postprocess, precision)
    session = new_session(path)
    feeds = feeds_for(session, description, path)
    names = [o.name for o in session.get_outputs()]
    reference = session.run(names, feeds)
    row = {'model': description.name, 'postprocess': postprocess, 'precision': precision,
           'output_bytes': int(sum(r.nbytes for r in reference))}
    row['host_ms'] = median_ms(lambda: session.run(names, feeds), runs)

    device = DEVICE['type']
    device_inputs = {k: ort.OrtValue.ortvalue_from_numpy(v, device, 0) for k, v in feeds.items()}
    binding = session.io_binding()
    for name, value in device_inputs.items():
        binding.bind_ortvalue_input(name, value)
    for name in names:
        binding.bind_output(name, DEVICE['type'], 0)

    def bound():
        session.run_with_iobinding(binding)
        return [value.numpy() for value in binding.get_outputs()]
    row['iobinding_ms'] = median_ms(bound, runs)
    row['iobinding_max_diff'] = max_diff(bound(), reference)

    try:
        graph_session = new_session(path, graph=True)
        graph_binding = graph_session.io_binding()
        for name, value in device_inputs.items():
            graph_binding.bind_ortvalue_input(name, value)
        outputs = [ort.OrtValue.ortvalue_from_shape_and_type(r.shape, r.dtype.type, device, 0)
                   for r in reference]
        for name, value in zip(names, outputs):
            graph_binding.bind_ortvalue_output(name, value)

        def graphed():
            graph_session.run_with_iobinding(graph_binding)
            return [value.numpy() for value in outputs]
        row['cuda_graph_ms'] = median_ms(graphed, runs)
        row['cuda_graph_max_diff'] = max_diff(graphed(), reference)
    except Exception as error:  # noqa: BLE001 - report why a graph could not be captured
        row['cuda_graph_error'] = str(error)[:300]
    return row


def overlap_run(models, precision, runs, concurrent=True):
    """Per-model GPU intervals (CUDA events on each engine's stream) in the real pipeline."""
    import cv2
    from skimage import data

    from dali_trt_ros.perception import PerceptionPipeline
    from dali_trt_ros.preprocess import EncodedFrame
    events = Events()
    jpeg = cv2.imencode('.jpg', cv2.resize(data.astronaut(), FRAME)[:, :, ::-1])[1].tobytes()
    chain = PerceptionPipeline.from_models(list(models), device='gpu', providers=('cuda',),
                                           precision=precision)
    if not concurrent:
        import concurrent.futures
        chain._pool.shutdown()
        chain._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    marks = {}
    for model in chain.models:
        engine = model.engine
        stream = getattr(engine, '_own_stream', None) or 0
        original = engine.run

        def timed(feeds, _original=original, _stream=stream, _name=model.name):
            start, end = events.create(), events.create()
            events.record(start, _stream)
            host_start = time.perf_counter()
            result = _original(feeds)
            host_end = time.perf_counter()
            events.record(end, _stream)
            marks.setdefault(_name, []).append((start, end, host_start, host_end))
            return result
        engine.run = timed
    frames = [EncodedFrame(jpeg, 'jpeg')]
    try:
        for _ in range(10):
            chain.process(frames)
        walls, frames_out = [], []
        for _ in range(runs):
            marks.clear()
            reference = events.create()
            events.record(reference, 0)
            start = time.perf_counter()
            chain.process(frames)
            walls.append((time.perf_counter() - start) * 1e3)
            frame = {}
            for name, spans in marks.items():
                first, last = spans[0], spans[-1]
                frame[name] = (events.elapsed_ms(reference, first[0]),
                               events.elapsed_ms(reference, last[1]))
            frames_out.append(frame)
        streams = {m.name: getattr(m.engine, '_own_stream', None) for m in chain.models}
    finally:
        chain.close()
    overlaps = []
    for frame in frames_out:
        spans = sorted(frame.values())
        if len(spans) >= 2:
            busy_union = max(e for _, e in spans) - min(s for s, _ in spans)
            busy_sum = sum(e - s for s, e in spans)
            overlaps.append(busy_sum - busy_union)  # > 0: time two models' spans overlapped
    return {'models': list(models), 'precision': precision, 'concurrent': concurrent,
            'chain_median_ms': statistics.median(walls),
            'streams': {k: (hex(v) if v else None) for k, v in streams.items()},
            'median_span_ms': {name: statistics.median(f[name][1] - f[name][0]
                                                       for f in frames_out)
                               for name in frames_out[0]},
            'median_overlap_ms': statistics.median(overlaps) if overlaps else None,
            'example_frame_spans_ms': frames_out[len(frames_out) // 2]}


def main(argv=None):
    """Run both parts; write ort_cuda.json after each step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=100)
    parser.add_argument('--out')
    parser.add_argument('--device', default='cuda', choices=('cuda', 'cpu'),
                        help='cpu: check the logic where there is no GPU (part 1 only)')
    args = parser.parse_args(argv)
    DEVICE['type'] = args.device
    from dali_trt_ros.models import load_model_description
    out = pathlib.Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    report = {'variants': [], 'overlap': []}

    def save(item, key):
        report[key].append(item)
        print(json.dumps(item), flush=True)
        if out:
            (out / 'ort_cuda.json').write_text(json.dumps(report, indent=1))
    for name in MODELS:
        description = load_model_description(name)
        for postprocess in ('host', 'device'):
            for precision in ('fp32', 'fp16'):
                try:
                    save(bench_variant(description, postprocess, precision, args.runs),
                         'variants')
                except Exception as error:  # noqa: BLE001 - keep the other measurements
                    save({'model': name, 'postprocess': postprocess, 'precision': precision,
                          'error': str(error)[:500]}, 'variants')
    for models in (MODELS[:2], MODELS) if args.device == 'cuda' else ():
        for precision in ('fp32', 'fp16'):
            for concurrent in (True, False):
                try:
                    save(overlap_run(models, precision, max(args.runs // 2, 20), concurrent),
                         'overlap')
                except Exception as error:  # noqa: BLE001
                    save({'models': list(models), 'precision': precision,
                          'concurrent': concurrent, 'error': str(error)[:500]}, 'overlap')
    return 0


if __name__ == '__main__':
    sys.exit(main())
