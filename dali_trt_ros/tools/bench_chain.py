"""bench_chain: full-chain latency (preprocess -> models -> decode) for several set-ups.

Compares the GPU path (DALI on the GPU feeding ONNX Runtime CUDA by device pointer) with the
obvious alternative (OpenCV preprocessing + ONNX Runtime), on the same 1080p JPEG frame, and
prints a table with per-frame median/p90 and the ratio to the first set-up.

TensorRT set-ups (``trt-fp32``, ``trt-fp16``, ``trt-int8``: DALI on the GPU, engine bound to
DALI's output by pointer) use the engines verify_tensorrt builds (same ``--work`` and build
settings). TensorRT 8.6 runs under a different Python than ONNX Runtime GPU on the GPU machine,
so a run may be split: ``--append`` adds rows to ``--out``/chain.json, ``--frame`` makes both
processes time the same JPEG bytes, ``--report`` prints the merged table. ``--accuracy`` adds,
per set-up, the golden photos compared with the ONNX Runtime CPU chain (top detections and
scores, mask agreement).
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

SETUPS = {
    'gpu-zerocopy': dict(device='gpu', providers=('cuda',)),
    'opencv+ort-cuda': dict(device='cpu', providers=('cuda',), cpu_backend='opencv'),
    'opencv+ort-cpu': dict(device='cpu', providers=('cpu',), cpu_backend='opencv'),
    # TensorRT chooses post-processing as ONNX Runtime CUDA does (auto: in the graph where the
    # decoder supports it; INT8 engines decode on the host, see perception.from_models).
    'trt-fp32': dict(device='gpu', backend='tensorrt', trt_precision='fp32'),
    'trt-fp16': dict(device='gpu', backend='tensorrt', trt_precision='fp16'),
    'trt-int8': dict(device='gpu', backend='tensorrt', trt_precision='int8'),
    'trt-fp16-host': dict(device='gpu', backend='tensorrt', postprocess='host',
                          trt_precision='fp16'),
    # FP16 engines at TensorRT's default optimization level (3), kept in <work>/level3 so they
    # never replace the quick level-0 builds of the same models (verify_tensorrt build --work
    # <work>/level3 without --opt-level makes them).
    'trt-fp16-level3': dict(device='gpu', backend='tensorrt', trt_precision='fp16',
                            trt_level3=True),
}
DEFAULT_SETUPS = ('gpu-zerocopy', 'opencv+ort-cuda', 'opencv+ort-cpu')
MODELS = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation', 'deeplabv3_mobilenetv2_untrained')


def test_frame(width=1920, height=1080):
    """A real photo (scikit-image astronaut) scaled to the frame size, as JPEG bytes."""
    import cv2
    from skimage import data
    bgr = cv2.resize(data.astronaut()[:, :, ::-1], (width, height))
    return cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def pipeline_for(name, models, args=None):
    """Return the PerceptionPipeline of set-up ``name`` (TensorRT engines as verify_tensorrt's)."""
    from dali_trt_ros.perception import PerceptionPipeline
    options = dict(SETUPS[name])
    precision = options.pop('trt_precision', None)
    if options.pop('trt_level3', False):
        args = argparse.Namespace(**dict(vars(args), work=os.path.join(args.work, 'level3'),
                                         opt_level=None))
    if precision is not None:
        from dali_trt_ros.tools.verify_tensorrt import engine_overrides, model_description
        options['engine_overrides'] = {
            model: engine_overrides(args, model_description(args, model), precision)
            for model in models}
    if args is not None and getattr(args, 'data', None):
        from dali_trt_ros.tools.verify_tensorrt import model_cache_dir
        options['cache_dir'] = model_cache_dir(args)
    return PerceptionPipeline.from_models(list(models), **options)


def time_setup(name, models, jpeg, runs, args=None):
    """Median/p90 ms per frame of PerceptionPipeline.process for one set-up."""
    from dali_trt_ros.preprocess import EncodedFrame
    pipeline = pipeline_for(name, models, args)
    try:
        frames = [EncodedFrame(jpeg, 'jpeg')]
        for _ in range(5):
            pipeline.process(frames)
        times, stages = [], {}
        for _ in range(runs):
            start = time.perf_counter()
            [result] = pipeline.process(frames)
            times.append((time.perf_counter() - start) * 1e3)
            for stage, value in result.timings_ms.items():
                stages.setdefault(stage, []).append(value)
        top = result.detections[models[0]] if models[0] in result.detections else None
        return {'setup': name, 'median_ms': statistics.median(times),
                'p90_ms': float(np.percentile(times, 90)), 'runs': runs,
                'preprocess': pipeline.preprocessor.backend,
                'postprocess': {m.name: 'device' if _device_postprocess(m) else 'host'
                                for m in pipeline.models},
                'stages_ms': {stage: round(statistics.median(values), 3)
                              for stage, values in sorted(stages.items())},
                'top': (top.labels[0], round(float(top.scores[0]), 3)) if top else None}
    finally:
        pipeline.close()


def _device_postprocess(model):
    decoder = model.decoder
    return bool(getattr(decoder, 'device_postprocess', False)
                or getattr(decoder, 'device_candidates', False))


def stage_breakdown(row):
    """Return (preprocess, inference, decode, overhead) medians in ms for one timed row.

    inference and decode (decode + NMS, or mask decoding) are summed over the models; models run
    concurrently, so overhead is the median minus preprocessing minus the slowest model's
    inference + decode (threads, Python, result assembly). None where not recorded.
    """
    stages = row.get('stages_ms')
    if not stages:
        return None, None, None, None
    pre = stages.get('preprocess', 0.0)
    models = {key.split('.', 1)[1] for key in stages if '.' in key}
    per_model = {m: stages.get(f'inference.{m}', 0.0) + stages.get(f'postprocess.{m}', 0.0)
                 for m in models}
    inference = sum(stages.get(f'inference.{m}', 0.0) for m in models)
    decode = sum(stages.get(f'postprocess.{m}', 0.0) for m in models)
    overhead = row['median_ms'] - pre - max(per_model.values(), default=0.0)
    return pre, inference, decode, overhead


def accuracy_rows(name, models, args, reference):
    """Golden photos through set-up ``name``, compared with the reference chain's results."""
    from dali_trt_ros.tools.verify_tensorrt import chain_results, compare_chains, photo_bytes
    precision = SETUPS[name].get('trt_precision', 'fp32')
    pipeline = pipeline_for(name, models, args)
    try:
        rows = compare_chains(reference, chain_results(pipeline, photo_bytes(args)), precision)
    finally:
        pipeline.close()
    return [dict(row, setup=name) for row in rows]


def print_tables(rows, accuracy, models):
    """Print the latency table (ratios to the first row) and the accuracy table."""
    print(f'models: {", ".join(models)}; input: 1920x1080 JPEG; batch 1')
    print('| set-up | preprocessing | median ms | p90 ms | x first | top detection | '
          'preprocess ms | inference ms | decode ms | overhead ms | post-processing |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for row in rows:
        if 'error' in row:
            print(f"| {row['setup']} | failed: {row['error'][:100]} | | | | | | | | | |")
            continue
        first = next(r for r in rows if 'error' not in r)
        stages = ' | '.join('' if value is None else f'{value:.2f}'
                            for value in stage_breakdown(row))
        where = ', '.join(f'{m.split("_")[0]} {w}'
                          for m, w in sorted(row.get('postprocess', {}).items()))
        print(f"| {row['setup']} | {row['preprocess']} | {row['median_ms']:.2f} | "
              f"{row['p90_ms']:.2f} | {row['median_ms'] / first['median_ms']:.2f} | "
              f"{row['top']} | {stages} | {where} |")
    print('(stage medians per frame; inference and decode summed over models, which run '
          'concurrently; overhead = median - preprocess - slowest model)')
    if accuracy:
        print('\ngolden photos vs the ONNX Runtime CPU chain:')
        print('| set-up | photo | model | ONNX Runtime CPU | set-up | IoU / mask agreement | ok |')
        print('|---|---|---|---|---|---|---|')
        for row in accuracy:
            print(f"| {row['setup']} | {row['photo']} | {row['model']} | {row['reference']} | "
                  f"{row['tensorrt']} | {row['agreement']} | {row['ok']} |")


def _load(path, default):
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as stream:
            return json.load(stream)
    return default


def _save(path, value):
    with open(path, 'w', encoding='utf-8') as stream:
        json.dump(value, stream, indent=1, default=str)


def main(argv=None):
    """Print the table; write chain.json (and accuracy.json) into --out if given."""
    from dali_trt_ros.tools.verify_tensorrt import BUNDLE_TACTIC_SOURCES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--setups', default=','.join(DEFAULT_SETUPS),
                        help=f'comma-separated, from {", ".join(SETUPS)}')
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--runs', type=int, default=50)
    parser.add_argument('--out')
    parser.add_argument('--frame', help='JPEG file to time (default: skimage astronaut at 1080p)')
    parser.add_argument('--append', action='store_true', help='add rows to --out/chain.json')
    parser.add_argument('--report', action='store_true', help='print --out/chain.json only')
    parser.add_argument('--accuracy', action='store_true',
                        help='golden photos per set-up vs the ONNX Runtime CPU chain')
    parser.add_argument('--reference-device', default='gpu', choices=['gpu', 'cpu'],
                        help='preprocessing of that reference chain (gpu: DALI, as the GPU '
                        'set-ups get it)')
    trt = parser.add_argument_group('TensorRT set-ups (as verify_tensorrt builds them)')
    trt.add_argument('--data', default=None, help="verify_tensorrt's data folder (photos/, "
                     'cache/models/)')
    trt.add_argument('--work', default='/tmp/trt-check', help='engine and calibration caches')
    trt.add_argument('--opt-level', type=int, default=None, choices=range(0, 6))
    trt.add_argument('--tactic-sources', default=BUNDLE_TACTIC_SOURCES)
    trt.add_argument('--workspace-mib', type=int, default=2048)
    trt.add_argument('--calibration-batches', type=int, default=16)
    trt.add_argument('--int8-fp16-tail', type=int, default=0, metavar='N',
                     help='as verify_tensorrt build used it')
    args = parser.parse_args(argv)
    models = args.models.split(',')
    chain_path = os.path.join(args.out or '.', 'chain.json')
    accuracy_path = os.path.join(args.out or '.', 'accuracy.json')
    rows = _load(chain_path, []) if args.append or args.report else []
    accuracy = _load(accuracy_path, []) if args.append or args.report else []
    if args.report:
        print_tables(rows, accuracy, models)
        return 0
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    if args.frame:
        with open(args.frame, 'rb') as stream:
            jpeg = stream.read()
    else:
        jpeg = test_frame()
    setups = args.setups.split(',')
    for name in setups:
        try:
            rows = [r for r in rows if r['setup'] != name] + [
                time_setup(name, models, jpeg, args.runs, args)]
        except Exception as error:  # noqa: B902 - one failing set-up must not lose the others
            rows.append({'setup': name, 'error': f'{type(error).__name__}: {error}'})
        if args.out:
            _save(chain_path, rows)
    if args.accuracy:
        from dali_trt_ros.tools.verify_tensorrt import photo_bytes, reference_chain
        args.models = models
        reference = reference_chain(args, photo_bytes(args))
        for name in setups:
            try:
                fresh = accuracy_rows(name, models, args, reference)
            except Exception as error:  # noqa: B902 - keep the other set-ups' rows
                fresh = [{'setup': name, 'photo': '', 'model': '', 'reference': '',
                          'tensorrt': f'failed: {type(error).__name__}: {error}'[:200],
                          'agreement': '', 'ok': False}]
            accuracy = [r for r in accuracy if r['setup'] != name] + fresh
            if args.out:
                _save(accuracy_path, accuracy)
    print_tables(rows, accuracy, models)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
