"""Run every prepared model on ONNX Runtime's CPU and another execution provider and compare.

For the GPU machine: ``python -m dali_trt_ros.models.check_providers --cache-dir DIR``
prints, per model, the largest output difference between CPU and CUDA and the median latency of
each. Exit status 1 when a model is missing or the outputs disagree beyond ``--tolerance``.
"""

import argparse
import statistics
import sys
import time


def model_inputs(session, seed=0):
    """Return a seeded input in [-1, 1] for the session's single static float input."""
    import numpy as np
    (spec,) = session.get_inputs()
    return {spec.name: np.random.default_rng(seed).uniform(-1.0, 1.0, spec.shape)
            .astype(np.float32)}


def timed_runs(session, feeds, repeats):
    """Return (outputs of the first run, median seconds over ``repeats`` runs)."""
    outputs = session.run(None, feeds)
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feeds)
        durations.append(time.perf_counter() - started)
    return outputs, statistics.median(durations)


def main(argv=None):
    """Compare CPU and ``--provider`` outputs for every prepared model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cache-dir', help='model cache (default: the usual one)')
    parser.add_argument('--provider', default='CUDAExecutionProvider')
    parser.add_argument('--tolerance', type=float, default=1e-2)
    parser.add_argument('--repeats', type=int, default=20)
    args = parser.parse_args(argv)
    import numpy as np
    import onnxruntime as ort

    from dali_trt_ros.errors import ModelError
    from dali_trt_ros.models import MODELS, verify_model

    if args.provider not in ort.get_available_providers():
        print(f'{args.provider} is not available in this onnxruntime '
              f'({ort.get_available_providers()}); install onnxruntime-gpu', file=sys.stderr)
        return 1
    failed = False
    for name in sorted(MODELS):
        try:
            path = str(verify_model(name, args.cache_dir).path)
        except ModelError as error:
            print(f'{name}: {error}', file=sys.stderr)
            failed = True
            continue
        cpu = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
        providers = list(dict.fromkeys([args.provider, 'CPUExecutionProvider']))
        other = ort.InferenceSession(path, providers=providers)
        feeds = model_inputs(cpu)
        reference, cpu_seconds = timed_runs(cpu, feeds, args.repeats)
        outputs, other_seconds = timed_runs(other, feeds, args.repeats)
        difference = max(float(np.abs(a - b).max()) for a, b in zip(reference, outputs))
        verdict = 'ok' if difference <= args.tolerance else 'MISMATCH'
        failed |= verdict != 'ok'
        print(f'{name:34s} max|cpu-{args.provider}| {difference:.2e} {verdict:8s} '
              f'cpu {cpu_seconds * 1e3:7.2f} ms  {other.get_providers()[0]} '
              f'{other_seconds * 1e3:7.2f} ms')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
