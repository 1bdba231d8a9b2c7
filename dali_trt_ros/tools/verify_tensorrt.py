"""verify_tensorrt: the TensorRT backend on a real GPU, checked against ONNX Runtime (CPU).

Steps (each writes ``verify_tensorrt.json`` and ``verify_tensorrt.md`` into ``--out`` after every
item, so a crash or a time limit keeps what was measured):

  photos  real photographs (scikit-image) as JPEG files: calibration set, golden photos, and a
          1080p frame for bench_chain; runs anywhere scikit-image is installed
  build   engines with the package's build path (load_engine, backend tensorrt) for each model
          and precision (fp32, fp16, int8 calibrated by IInt8EntropyCalibrator2 over the photos,
          fed by the package's own preprocessing, DALI on the GPU); build times
  check   every engine again through the engine cache (a second start must not build; load
          time), run with DALI's GPU output bound by pointer (zero copy) and compared with ONNX
          Runtime CPU on the same input tensor; the golden photos through the whole TensorRT
          chain compared with the ONNX Runtime CPU chain; a changed cache key rebuilds; what
          the DLA configuration does on this machine (no DLA: GPU with gpu_fallback, error
          without)

The engine cache and calibration caches live in ``--work`` (e.g. /tmp/trt-check), so build and
check can run as separate calls of a few minutes each. See docs/engines.md for the commands.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import time
import traceback

import numpy as np

MODELS = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation', 'deeplabv3_mobilenetv2_untrained')
PRECISIONS = ('fp32', 'fp16', 'int8')
# The staged TensorRT bundle on the GPU machine has stub cuBLAS/cuDNN libraries.
BUNDLE_TACTIC_SOURCES = 'EDGE_MASK_CONVOLUTIONS,JIT_CONVOLUTIONS'
GOLDEN_PHOTOS = ('astronaut', 'chelsea', 'coffee')
CALIBRATION_PHOTOS = ('rocket', 'camera', 'coins', 'moon', 'page', 'text', 'clock', 'horse',
                      'cell', 'immunohistochemistry', 'hubble_deep_field', 'brick', 'grass',
                      'gravel', 'colorwheel', 'logo', 'retina', 'microaneurysms')
# Engine outputs vs ONNX Runtime CPU on the same input tensor, per kind of output (from the
# model description's decoder), so each number means something for what the output is:
#   values        boxes and other regressions: max |diff| relative to the output's max |value|
#   class_scores  SSD class logits (..., classes): the same, plus best-class agreement per anchor
#   logits        segmentation logits: the same, plus best-class agreement per pixel (channel
#                 axis from the decoder's layout)
#   probability   one probability channel: max and mean |diff| of the probabilities, plus
#                 agreement of the thresholded masks (p > 0.5); a relative diff of values in
#                 [0, 1] is just the absolute one, and a worst pixel near 0.5 says little
# None: not checked at that precision (reported only). INT8 is held to agreement only: its
# values are expected to move, what must not move is the decision (class, mask).
TOLERANCES = {
    'values': {'fp32': {'relative': 1e-3}, 'fp16': {'relative': 2e-2}, 'int8': {}},
    'class_scores': {'fp32': {'relative': 1e-3, 'agreement': 0.999},
                     'fp16': {'relative': 2e-2, 'agreement': 0.99},
                     'int8': {'agreement': 0.95}},
    'logits': {'fp32': {'relative': 1e-3, 'agreement': 0.999},
               'fp16': {'relative': 2e-2, 'agreement': 0.98},
               'int8': {'agreement': 0.9}},
    'probability': {'fp32': {'max_abs': 1e-3, 'agreement': 0.999},
                    'fp16': {'mean_abs': 1e-2, 'agreement': 0.99},
                    'int8': {'agreement': 0.95}},
}
# Chain agreement with the ONNX Runtime CPU chain on the golden photos.
DETECTION_IOU = 0.9
MASK_AGREEMENT = {'fp32': 0.99, 'fp16': 0.98, 'int8': 0.9}

LOG = logging.getLogger('verify_tensorrt')


# ------------------------------------------------------------------------------ results file
class Results:
    """A JSON document rewritten (with its Markdown view) after every change."""

    def __init__(self, out):
        self.out = out
        os.makedirs(out, exist_ok=True)
        self.path = os.path.join(out, 'verify_tensorrt.json')
        self.data = {}
        if os.path.isfile(self.path):
            with open(self.path, encoding='utf-8') as stream:
                self.data = json.load(stream)

    def put(self, section, key, value):
        """Store ``value`` under ``section``/``key`` and write both files."""
        self.data.setdefault(section, {})[key] = value
        self.save()

    def save(self):
        """Write the JSON and the Markdown summary."""
        with open(self.path + '.tmp', 'w', encoding='utf-8') as stream:
            json.dump(self.data, stream, indent=1, sort_keys=True, default=str)
        os.replace(self.path + '.tmp', self.path)
        with open(os.path.join(self.out, 'verify_tensorrt.md'), 'w', encoding='utf-8') as stream:
            stream.write(markdown(self.data))


def markdown(data):
    """Return the results as Markdown tables."""
    lines = ['# verify_tensorrt', '']
    for key, value in sorted(data.get('environment', {}).items()):
        lines.append(f'- {key}: {value}')
    if data.get('build'):
        lines += ['', '## Builds', '', '| engine | built | seconds | size MiB | timing cache | '
                  'error |', '|---|---|---|---|---|---|']
        for key, row in sorted(data['build'].items()):
            note = row.get('timing_cache', '').rsplit('(', 1)[-1].rstrip(')')
            lines.append(f"| {key} | {row.get('built')} | {row.get('seconds', '')} | "
                         f"{row.get('engine_mib', '')} | {note} | "
                         f"{row.get('error', '')[:120]} |")
    if data.get('engines'):
        lines += ['', '## Engines vs ONNX Runtime CPU on the same input tensor', '',
                  '| engine | from cache | load s | zero copy | run ms | worst rel. diff | '
                  'agreement | ok | failing (metric vs limit, docs/engines.md) |',
                  '|---|---|---|---|---|---|---|---|---|']
        for key, row in sorted(data['engines'].items()):
            lines.append(f"| {key} | {row.get('from_cache')} | {row.get('load_s', '')} | "
                         f"{row.get('zero_copy', '')} | "
                         f"{row.get('run_ms_median', '')} | {row.get('worst_relative', '')} | "
                         f"{row.get('agreement', '')} | {row.get('ok', row.get('error', ''))} | "
                         f"{'; '.join(row.get('failing', []))[:300]} |")
    if data.get('chain'):
        lines += ['', '## Golden photos: TensorRT chain vs ONNX Runtime CPU chain', '',
                  '| precision | photo | model | ONNX Runtime | TensorRT | IoU / mask agreement '
                  '| ok |', '|---|---|---|---|---|---|---|']
        for precision, rows in sorted(data['chain'].items()):
            for row in rows if isinstance(rows, list) else [rows]:
                lines.append(f"| {precision} | {row.get('photo', '')} | {row.get('model', '')} | "
                             f"{row.get('reference', '')} | {row.get('tensorrt', '')} | "
                             f"{row.get('agreement', '')} | {row.get('ok', row.get('error'))} |")
    for section in ('rekey', 'dla'):
        if data.get(section):
            lines += ['', f'## {section}', '']
            lines += [f'- {k}: {v}' for k, v in sorted(data[section].items())]
    return '\n'.join(lines) + '\n'


def guarded(results, section, key):
    """Return a runner that calls a function and records its exception instead of raising."""
    def run(function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: B902 - one failure must not lose the others
            LOG.error('%s %s failed: %s', section, key, error)
            results.put(section, key, {'error': f'{type(error).__name__}: {error}',
                                       'traceback': traceback.format_exc()[-2000:]})
            return None
    return run


# ------------------------------------------------------------------------------------ photos
def write_photos(out):
    """Write the calibration and golden photos and the 1080p bench frame as JPEG files."""
    import cv2
    from skimage import data
    written = {'golden': [], 'calibration': []}
    for group, names in (('golden', GOLDEN_PHOTOS), ('calibration', CALIBRATION_PHOTOS)):
        folder = os.path.join(out, 'photos', group)
        os.makedirs(folder, exist_ok=True)
        for name in names:
            try:
                image = getattr(data, name)()
            except Exception as error:  # noqa: B902 - some need a download (pooch)
                print(f'skipped skimage.data.{name}: {type(error).__name__}')
                continue
            image = _as_rgb8(image)
            cv2.imwrite(os.path.join(folder, f'{name}.jpg'), image[:, :, ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            written[group].append(name)
    frame = cv2.resize(data.astronaut()[:, :, ::-1], (1920, 1080))
    cv2.imwrite(os.path.join(out, 'photos', 'frame_1080p.jpg'), frame,
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(json.dumps(written))
    return written


def _as_rgb8(image):
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        span = max(float(image.max() - image.min()), 1e-9)
        image = (255 * (image - image.min()) / span).astype(np.uint8)
    return np.ascontiguousarray(image)


# ---------------------------------------------------------------------------- engine configs
def engine_overrides(args, description, precision):
    """Engine settings for one model at one precision (the same in build, check and bench)."""
    settings = {'precision': precision,
                'engine_cache_dir': os.path.join(args.work, 'engines'),
                'workspace_mib': args.workspace_mib,
                'tactic_sources': args.tactic_sources.split(',') if args.tactic_sources else None,
                'builder_optimization_level': args.opt_level}
    if precision == 'int8':
        settings['calibration'] = {
            'images': os.path.join(args.data, 'photos', 'calibration'),
            'cache': os.path.join(args.work, 'calibration', f'{description.name}.cache'),
            'preprocess': {'inputs': [dict(description.input)]},
            'max_batches': args.calibration_batches}
        settings['int8_fp16_tail_layers'] = getattr(args, 'int8_fp16_tail', 0)
    return settings


def model_description(args, name):
    """Load a model description whose ONNX file is in ``--data``/cache/models (or the cache)."""
    from dali_trt_ros.models import load_model_description
    return load_model_description(name, cache_dir=model_cache_dir(args))


def model_cache_dir(args):
    """Return --data/cache/models when the data folder carries the models, else None."""
    folder = os.path.join(args.data, 'cache', 'models')
    return folder if os.path.isdir(folder) else None


def model_path(args, name, variant='plain'):
    """Return the ONNX file of a model: the plain one, or its device post-processing variant."""
    description = model_description(args, name)
    if variant == 'plain':
        return str(description.onnx_path)
    from dali_trt_ros.models.variants import prepare_variant
    return str(prepare_variant(description, 'device', 'fp32'))


def load_trt(args, name, precision, variant='plain', **changes):
    """Load (or build) one engine through the package's TensorRT backend.

    ``variant`` 'devpost' is the *.devpost.onnx model the TensorRT chain runs (post-processing
    in the graph), configured as perception.from_models configures it, so the chain finds the
    engine built here in the cache.
    """
    from dali_trt_ros.engines import load_engine
    from dali_trt_ros.perception import tensorrt_profiles
    description = model_description(args, name)
    path = model_path(args, name, variant)
    config = {'model': path, 'backend': 'tensorrt',
              **engine_overrides(args, description, precision), **changes}
    if variant != 'plain':
        config['inputs'] = tensorrt_profiles(path, description.input['name'], max_batch=1)
    return load_engine(config)


# ------------------------------------------------------------------------------------- build
def build(args, results):
    """Build (or find in the cache) every requested engine; record times and sizes.

    No new build starts after ``--max-seconds``: the call ends in time, and running the same
    command again continues with the engines not yet in the cache.
    """
    environment(results)
    started = time.monotonic()
    jobs = [(name, precision, variant) for variant in args.variants for name in args.models
            for precision in args.precisions
            # INT8 engines decode on the host (perception.from_models): no devpost INT8.
            if not (variant == 'devpost' and precision == 'int8')]
    for name, precision, variant in jobs:
        key = f'{name}.{precision}' + ('' if variant == 'plain' else f'.{variant}')
        if time.monotonic() - started > args.max_seconds and not os.path.isfile(
                engine_file(args, name, precision, variant)):
            results.put('build', key, {'built': False, 'ok': False, 'error': 'not started: '
                                       '--max-seconds reached; run the same command again'})
            continue

        def one():
            started = time.monotonic()
            engine = load_trt(args, name, precision, variant)
            try:
                path = engine_file(args, name, precision, variant)
                row = {'built': engine.built, 'seconds': round(time.monotonic() - started, 1),
                       'engine_mib': round(os.path.getsize(path) / 2**20, 2),
                       'inputs': [t.describe() for t in engine.inputs],
                       'outputs': [t.describe() for t in engine.outputs],
                       'timing_cache': _timing_cache_note(path)}
            finally:
                engine.close()
            results.put('build', key, row)
            print(f'build {key}: {row}', flush=True)
        guarded(results, 'build', key)(one)


def _timing_cache_note(engine_path):
    """Return the engine record's timing-cache line (reused / new / rejected), or ''."""
    try:
        with open(engine_path + '.json', encoding='utf-8') as stream:
            notes = json.load(stream).get('notes', [])
    except (OSError, ValueError):
        return ''
    return next((note for note in notes if note.startswith('timing cache:')), '')


def engine_file(args, name, precision, variant='plain'):
    """Return the cached engine path of one model, precision and variant (GPU build)."""
    from dali_trt_ros.engines.engine_cache import default_engine_path
    return default_engine_path(os.path.join(args.work, 'engines'),
                               model_path(args, name, variant), precision, None)


def environment(results):
    """Record versions and device facts once."""
    if results.data.get('environment'):
        return
    import tensorrt as trt
    from dali_trt_ros.engines.cuda_runtime import cuda_runtime
    from dali_trt_ros.engines.tensorrt_engine import tensorrt_logger
    cuda = cuda_runtime()
    name, capability = cuda.device_properties(0)
    runtime = trt.Runtime(tensorrt_logger(trt))
    facts = {'python': sys.version.split()[0], 'tensorrt': trt.__version__,
             'gpu': name, 'compute_capability': '.'.join(map(str, capability)),
             'cuda_runtime': cuda.runtime_version(), 'libcudart': cuda.path,
             'dla_cores (runtime.num_DLA_cores)': int(getattr(runtime, 'num_DLA_cores', 0)),
             'numpy': np.__version__}
    if hasattr(trt, 'nvinfer_lib_version'):
        facts['libnvinfer'] = trt.nvinfer_lib_version()
    for module in ('nvidia.dali', 'onnxruntime', 'cv2'):
        try:
            facts[module] = __import__(module, fromlist=['__version__']).__version__
        except ImportError as error:
            facts[module] = f'not importable: {error}'
    for key, value in facts.items():
        results.put('environment', key, value)


# ------------------------------------------------------------------------------------- check
def photo_bytes(args, group='golden'):
    """Return {name: JPEG bytes} of the photos written by the photos step."""
    folder = os.path.join(args.data, 'photos', group)
    photos = {}
    for file_name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, file_name), 'rb') as stream:
            photos[os.path.splitext(file_name)[0]] = stream.read()
    return photos


def output_kinds(description):
    """Return {output name: (kind, class axis)} from a model description's decoder.

    Kinds are those of TOLERANCES; outputs the decoder does not name are 'values'.
    """
    decoder = description.decoder
    kinds = {}
    if decoder.get('type') == 'ssd':
        kinds[decoder.get('score_output')] = ('class_scores', -1)
        kinds[decoder.get('box_output')] = ('values', None)
    elif decoder.get('type') == 'segmentation':
        kind = decoder.get('kind', 'logits')
        axis = 1 if decoder.get('layout', 'NCHW') == 'NCHW' else -1
        kinds[decoder.get('output')] = (kind if kind in TOLERANCES else 'values', axis)
    return kinds


def compare_outputs(expected, actual, precision, kinds=None):
    """Return ({output: metrics}, ok) of TensorRT vs ONNX Runtime per TOLERANCES.

    ``kinds`` is output_kinds() of the model; each row says its kind, the metrics and the
    limits applied, and ``ok``.
    """
    rows, ok = {}, True
    for name, reference in expected.items():
        kind, axis = (kinds or {}).get(name, ('values', None))
        value = np.asarray(actual[name], np.float64)
        reference = np.asarray(reference, np.float64)
        scale = max(float(np.abs(reference).max()), 1e-12)
        difference = np.abs(value - reference)
        row = {'kind': kind, 'max_abs': float(difference.max()),
               'mean_abs': float(difference.mean()), 'max_ref': scale,
               'relative': float(difference.max()) / scale}
        if kind in ('class_scores', 'logits'):
            row['agreement'] = float(np.mean(value.argmax(axis) == reference.argmax(axis)))
        elif kind == 'probability':
            row['agreement'] = float(np.mean((value > 0.5) == (reference > 0.5)))
        limits = TOLERANCES[kind][precision]
        row['limits'] = dict(limits)
        row['ok'] = all(row[metric] >= limit if metric == 'agreement' else row[metric] <= limit
                        for metric, limit in limits.items())
        ok &= row['ok']
        rows[name] = row
    return rows, ok


def check_engine(args, results, name, precision, photos):
    """Second start from the cache, zero-copy run on DALI GPU output, compare with ORT CPU."""
    from dali_trt_ros.engines import device_buffer_from_dali, load_engine
    from dali_trt_ros.preprocess import EncodedFrame
    from dali_trt_ros.preprocess.factory import create_preprocessor
    from dali_trt_ros.preprocess.spec import PreprocessSpec
    description = model_description(args, name)
    engine = load_trt(args, name, precision)
    reference = load_engine({'model': str(description.onnx_path), 'providers': ['cpu']})
    spec = PreprocessSpec.from_dict({'inputs': [dict(description.input)]})
    preprocessor = create_preprocessor(spec, device=args.preprocess_device, device_id=0)
    input_name = description.input['name']
    row = {'from_cache': not engine.built, 'load_s': round(engine.load_seconds, 3),
           'preprocess': preprocessor.backend, 'photos': {}}
    ok = not engine.built
    agreement = []
    try:
        for photo, data in photos.items():
            pre = preprocessor.run([EncodedFrame(data)])
            dali_output = (pre.device_tensors or {}).get(input_name)
            host = np.array(pre.tensors[input_name])
            # DALI's GPU memory bound by address (zero copy); host input without a GPU DALI.
            device = device_buffer_from_dali(dali_output) if dali_output is not None else host
            row['zero_copy'] = dali_output is not None
            actual = engine.run({input_name: device})
            expected = reference.run({input_name: host})
            compared, same = compare_outputs(expected, actual, precision,
                                             output_kinds(description))
            row['photos'][photo] = compared
            ok &= same
            agreement += [v['agreement'] for v in compared.values() if 'agreement' in v]
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            engine.run({input_name: device})
            times.append((time.perf_counter() - started) * 1e3)
        row['run_ms_median'] = round(statistics.median(times), 3)
        row['run_ms_p90'] = round(float(np.percentile(times, 90)), 3)
        row['worst_relative'] = max(v['relative'] for p in row['photos'].values()
                                    for v in p.values())
        row['agreement'] = round(min(agreement), 4) if agreement else None
        row['failing'] = [
            f'{photo}/{output} ({item["kind"]}): ' + ', '.join(
                f'{metric} {item[metric]:.4g} vs {limit}' for metric, limit in
                item['limits'].items())
            for photo, outputs in row['photos'].items() for output, item in outputs.items()
            if not item['ok']]
        row['ok'] = bool(ok)
    finally:
        engine.close()
        reference.close()
    results.put('engines', f'{name}.{precision}', row)
    print(f'check {name}.{precision}: ok={row["ok"]} load {row["load_s"]} s, run '
          f'{row["run_ms_median"]} ms, worst rel {row["worst_relative"]:.3g}', flush=True)


def chain_results(pipeline, photos):
    """Process each photo alone; return {photo: FrameResult}."""
    from dali_trt_ros.preprocess import EncodedFrame
    return {photo: pipeline.process([EncodedFrame(data)])[0] for photo, data in photos.items()}


def box_iou(first, second):
    """Return the IoU of two x1, y1, x2, y2 boxes."""
    x1, y1 = max(first[0], second[0]), max(first[1], second[1])
    x2, y2 = min(first[2], second[2]), min(first[3], second[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = ((first[2] - first[0]) * (first[3] - first[1])
             + (second[2] - second[0]) * (second[3] - second[1]) - inter)
    return inter / union if union > 0 else 0.0


def compare_chains(reference, candidate, precision, top=3):
    """Rows comparing two chains' results per photo and model (top detections, mask agreement)."""
    rows = []
    for photo, expected in reference.items():
        actual = candidate[photo]
        for model, detections in expected.detections.items():
            got = actual.detections.get(model)
            for k in range(min(top, len(detections.scores))):
                label, box = detections.labels[k], detections.boxes[k]
                matches = [(box_iou(box, got.boxes[j]), float(got.scores[j]))
                           for j in range(len(got.scores)) if got.labels[j] == label] \
                    if got is not None else []
                iou, score = max(matches) if matches else (0.0, None)
                rows.append({'photo': photo, 'model': model, 'rank': k,
                             'reference': f'{label} {float(detections.scores[k]):.3f}',
                             'tensorrt': f'{label} {score:.3f}' if score is not None else 'none',
                             'agreement': round(iou, 4), 'ok': iou >= DETECTION_IOU})
        for model, segmentation in expected.segmentations.items():
            got = actual.segmentations.get(model)
            same = float(np.mean(got.label_map == segmentation.label_map)) if got else 0.0
            rows.append({'photo': photo, 'model': model,
                         'reference': _fractions(segmentation), 'tensorrt': _fractions(got),
                         'agreement': round(same, 4), 'ok': same >= MASK_AGREEMENT[precision]})
    return rows


def _fractions(segmentation):
    if segmentation is None:
        return 'none'
    top = sorted(segmentation.class_fractions.items(), key=lambda item: -item[1])[:2]
    return ', '.join(f'{label} {share:.3f}' for label, share in top)


def reference_chain(args, photos):
    """Return the ONNX Runtime CPU chain's results on the photos.

    Preprocessing is DALI on the GPU as in the TensorRT chain (host copies for ONNX Runtime),
    so the comparison isolates the engine.
    """
    from dali_trt_ros.perception import PerceptionPipeline
    pipeline = PerceptionPipeline.from_models(list(args.models), backend='onnxruntime',
                                              providers=('cpu',), device=args.reference_device,
                                              postprocess='host', cache_dir=model_cache_dir(args))
    try:
        return chain_results(pipeline, photos)
    finally:
        pipeline.close()


def tensorrt_chain(args, precision, photos):
    """Return the TensorRT chain's results on the photos (DALI on the GPU, zero copy).

    Post-processing is chosen as the node chooses it (auto): in the graph (*.devpost.onnx
    engines, built by ``build --variants devpost``) for fp32/fp16, on the host for int8.
    """
    from dali_trt_ros.perception import PerceptionPipeline
    overrides = {name: engine_overrides(args, model_description(args, name), precision)
                 for name in args.models}
    pipeline = PerceptionPipeline.from_models(list(args.models), backend='tensorrt',
                                              device=args.preprocess_device, postprocess='auto',
                                              engine_overrides=overrides,
                                              cache_dir=model_cache_dir(args))
    try:
        return chain_results(pipeline, photos)
    finally:
        pipeline.close()


def check_rekey(args, results):
    """Check the cache's replace-when-stale rule: same key loads, a changed key rebuilds in place.

    An engine's path is ``<model>.<precision>.<gpu|dlaN>.engine`` whatever the other key
    fields: on a vehicle one engine per model, precision and target is kept, and a stale one is
    replaced rather than piling up beside the new one (bounded disk; switching a setting back
    costs one rebuild). GPU run 1's check expected the original key to load from the cache
    after the rebuild, i.e. two keys side by side, which that rule rules out; so it now asserts
    the rule: the rebuilt engine replaced the original (one engine in the folder, its record
    holding the new key). Works on a copy of one cached engine in its own folder, so the
    engines the other checks use stay as they are.
    """
    import shutil
    name = 'selfie_segmentation' if 'selfie_segmentation' in args.models else args.models[0]
    folder = os.path.join(args.work, 'rekey')
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, mode=0o700)
    precision = 'fp32' if 'fp32' in args.precisions else args.precisions[0]
    source = engine_file(args, name, precision)
    for path in (source, source + '.json'):
        shutil.copy(path, folder)
    same = load_trt(args, name, precision, engine_cache_dir=folder)
    row = {'model': name, 'precision': precision, 'same_key_from_cache': not same.built}
    same.close()
    changed = load_trt(args, name, precision, engine_cache_dir=folder,
                       workspace_mib=args.workspace_mib + 1)
    row.update({'changed': 'workspace_mib', 'rebuilt': changed.built,
                'rebuild_seconds': round(changed.load_seconds, 2)})
    changed.close()
    engines = sorted(n for n in os.listdir(folder) if n.endswith('.engine'))
    with open(os.path.join(folder, os.path.basename(source) + '.json'), encoding='utf-8') as f:
        recorded = json.load(f)['key']['workspace_mib']
    row.update({'engines_in_folder': engines, 'record_workspace_mib': recorded,
                'replaced_in_place': engines == [os.path.basename(source)]
                and recorded == args.workspace_mib + 1})
    row['ok'] = row['same_key_from_cache'] and row['rebuilt'] and row['replaced_in_place']
    results.put('rekey', name, row)


def check_dla(args, results):
    """Record what dla_core does here: gpu_fallback -> GPU engine + warning, else an error."""
    from dali_trt_ros.errors import ConfigError
    name = 'selfie_segmentation' if 'selfie_segmentation' in args.models else args.models[0]
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger('dali_trt_ros').addHandler(handler)
    try:
        engine = load_trt(args, name, 'fp16', dla_core=0, gpu_fallback=True)
        results.put('dla', 'with gpu_fallback: true',
                    f'loaded ({"built" if engine.built else "the GPU fp16 engine from the cache"}'
                    f'); warnings: {[r.getMessage() for r in records if r.levelno >= 30]}')
        engine.close()
        try:
            load_trt(args, name, 'fp16', dla_core=0, gpu_fallback=False).close()
            results.put('dla', 'with gpu_fallback: false', 'UNEXPECTED: loaded')
        except ConfigError as error:
            results.put('dla', 'with gpu_fallback: false', f'ConfigError: {error}')
    finally:
        logging.getLogger('dali_trt_ros').removeHandler(handler)


def check(args, results):
    """Run every check of the check step; each records its own failure."""
    environment(results)
    photos = photo_bytes(args)
    for name in args.models:
        for precision in args.precisions:
            guarded(results, 'engines', f'{name}.{precision}')(
                check_engine, args, results, name, precision, photos)
    reference = guarded(results, 'chain', 'onnxruntime-cpu')(reference_chain, args, photos)
    for precision in args.precisions:
        def one(precision=precision):
            rows = compare_chains(reference, tensorrt_chain(args, precision, photos), precision)
            results.put('chain', precision, rows)
            print(f'chain {precision}: {sum(r["ok"] for r in rows)} of {len(rows)} agree',
                  flush=True)
        if reference is not None:
            guarded(results, 'chain', precision)(one)
    if not args.skip_rekey:
        guarded(results, 'rekey', 'error')(check_rekey, args, results)
    guarded(results, 'dla', 'error')(check_dla, args, results)


# -------------------------------------------------------------------------------------- main
def _parser():
    parser = argparse.ArgumentParser(prog='verify_tensorrt', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    parser.add_argument('step', choices=['photos', 'build', 'check'])
    parser.add_argument('--out', required=True, help='results folder ($OUT on the GPU machine)')
    parser.add_argument('--data', default='.', help='folder with photos/ (from the photos '
                        'step) and cache/models/*.onnx')
    parser.add_argument('--work', default='/tmp/trt-check', help='engine and calibration '
                        'caches, kept between calls')
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--precisions', default=','.join(PRECISIONS))
    parser.add_argument('--variants', default='plain',
                        help='build: plain (the checks\' engines) and/or devpost (the '
                        '*.devpost.onnx engines the TensorRT chain and bench_chain run; not for '
                        'int8), comma-separated')
    parser.add_argument('--opt-level', type=int, default=None, choices=range(0, 6),
                        help='builder_optimization_level (8.6+); lower builds faster')
    parser.add_argument('--tactic-sources', default=BUNDLE_TACTIC_SOURCES,
                        help='trt.TacticSource names; "" for TensorRT\'s default (the staged '
                        'bundle has stub cuBLAS/cuDNN, hence the default here)')
    parser.add_argument('--workspace-mib', type=int, default=2048)
    parser.add_argument('--calibration-batches', type=int, default=16)
    parser.add_argument('--int8-fp16-tail', type=int, default=0, metavar='N',
                        help='INT8 remedy: keep the last N float layers of each model in FP16 '
                        '(int8_fp16_tail_layers; part of the engine key, use the same value in '
                        'build and check)')
    parser.add_argument('--runs', type=int, default=100, help='timed runs per engine')
    parser.add_argument('--max-seconds', type=float, default=420,
                        help='build: start no new build after this many seconds')
    parser.add_argument('--skip-rekey', action='store_true')
    parser.add_argument('--preprocess-device', default='gpu', choices=['gpu', 'cpu'],
                        help='preprocessing feeding TensorRT in check (gpu: DALI, zero copy; '
                        'cpu only to try the script where DALI has no GPU)')
    parser.add_argument('--reference-device', default='gpu', choices=['gpu', 'cpu'],
                        help='preprocessing of the ONNX Runtime CPU reference chain (gpu: the '
                        'same DALI GPU tensors the TensorRT chain gets)')
    parser.add_argument('-v', '--verbose', action='store_true')
    return parser


def main(argv=None):
    """Run one step; return 0 when every check of it passed."""
    args = _parser().parse_args(argv)
    args.models = [m for m in args.models.split(',') if m]
    args.precisions = [p for p in args.precisions.split(',') if p]
    args.variants = [v for v in args.variants.split(',') if v]
    unknown = set(args.variants) - {'plain', 'devpost'}
    if unknown:
        _parser().error(f'--variants: unknown {sorted(unknown)}; use plain and/or devpost')
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    if args.step == 'photos':
        write_photos(args.out)
        return 0
    results = Results(args.out)
    started = time.monotonic()
    if args.step == 'build':
        build(args, results)
    else:
        check(args, results)
    results.put('timing', args.step, round(time.monotonic() - started, 1))
    failed = [f'{section}/{key}' for section, items in results.data.items()
              if isinstance(items, dict) for key, row in items.items()
              if any(isinstance(item, dict) and (item.get('error') or item.get('ok') is False)
                     for item in (row if isinstance(row, list) else [row]))]
    print(markdown(results.data))
    print('FAILED: ' + ', '.join(failed) if failed else 'all checks passed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
