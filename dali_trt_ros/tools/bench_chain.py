"""bench_chain: full-chain latency (preprocess -> models -> decode) for several set-ups.

Compares the GPU path (DALI on the GPU feeding ONNX Runtime CUDA by device pointer) with the
obvious alternative (OpenCV preprocessing + ONNX Runtime), on the same 1080p JPEG frame, and
prints a table with per-frame median/p90 and the ratio to the first set-up.
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
}
MODELS = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation', 'deeplabv3_mobilenetv2_untrained')


def test_frame(width=1920, height=1080):
    """A real photo (scikit-image astronaut) scaled to the frame size, as JPEG bytes."""
    import cv2
    from skimage import data
    bgr = cv2.resize(data.astronaut()[:, :, ::-1], (width, height))
    return cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def time_setup(name, models, jpeg, runs):
    """Median/p90 ms per frame of PerceptionPipeline.process for one set-up."""
    from dali_trt_ros.perception import PerceptionPipeline
    from dali_trt_ros.preprocess import EncodedFrame
    pipeline = PerceptionPipeline.from_models(list(models), **SETUPS[name])
    try:
        frames = [EncodedFrame(jpeg, 'jpeg')]
        for _ in range(5):
            pipeline.process(frames)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            [result] = pipeline.process(frames)
            times.append((time.perf_counter() - start) * 1e3)
        top = result.detections[models[0]] if models[0] in result.detections else None
        return {'setup': name, 'median_ms': statistics.median(times),
                'p90_ms': float(np.percentile(times, 90)), 'runs': runs,
                'preprocess': pipeline.preprocessor.backend,
                'top': (top.labels[0], round(float(top.scores[0]), 3)) if top else None}
    finally:
        pipeline.close()


def main(argv=None):
    """Print the table; write results.json into --out if given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--setups', default=','.join(SETUPS))
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--runs', type=int, default=50)
    parser.add_argument('--out')
    args = parser.parse_args(argv)
    models = args.models.split(',')
    jpeg = test_frame()
    rows = [time_setup(name, models, jpeg, args.runs) for name in args.setups.split(',')]
    print(f'models: {", ".join(models)}; input: 1920x1080 JPEG; batch 1')
    print('| set-up | preprocessing | median ms | p90 ms | x first | top detection |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        print(f"| {row['setup']} | {row['preprocess']} | {row['median_ms']:.2f} | "
              f"{row['p90_ms']:.2f} | {row['median_ms'] / rows[0]['median_ms']:.2f} | "
              f"{row['top']} |")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'chain.json'), 'w') as stream:
            json.dump(rows, stream, indent=1)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
