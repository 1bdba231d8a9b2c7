"""The issue-11 chain goals, measured: 1080p JPEG through PerceptionPipeline, with a profile.

Set-ups (same JPEG, same run): ``gpu-devpost`` (DALI GPU -> ORT CUDA by pointer, post-processing
in the graph), ``gpu-devpost-fp16`` (same, FP16 weights), ``gpu-hostpost`` (post-processing in
NumPy, the previous path) and ``opencv+ort-cuda`` (the obvious alternative). Model sets: SSD;
SSD + person segmenter; SSD + person segmenter + DeepLab. Batch 1 and batch 4 (four cameras'
frames in one ``process`` call). Per frame: median and p99 ms, and where the time goes
(preprocessing, each model's engine run and decode, measured around the real calls). Goals:
SSD <= 3.5 ms, SSD + segmenter <= 5 ms, all three <= 8 ms (batch 1, p50); batch 4 per frame
<= 40 % of batch 1. Writes ``chain_goals.json`` after every case, then ``chain_goals.md``.

Run: ``python benchmarks/chain_goals.py --out $OUT/chain`` (``--runs``, default 60).
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

import numpy as np

SSD, SELFIE, DEEPLAB = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation',
                        'deeplabv3_mobilenetv2_untrained')
MODEL_SETS = {'ssd': (SSD,), 'ssd+selfie': (SSD, SELFIE),
              'ssd+selfie+deeplab': (SSD, SELFIE, DEEPLAB)}
GOALS_MS = {'ssd': 3.5, 'ssd+selfie': 5.0, 'ssd+selfie+deeplab': 8.0}
SETUPS = {
    'gpu-devpost': dict(device='gpu', providers=('cuda',), postprocess='device'),
    'gpu-devpost-fp16': dict(device='gpu', providers=('cuda',), postprocess='device',
                             precision='fp16'),
    'gpu-hostpost': dict(device='gpu', providers=('cuda',), postprocess='host'),
    'opencv+ort-cuda': dict(device='cpu', providers=('cuda',), cpu_backend='opencv',
                            postprocess='host'),
    'cpu-devpost': dict(device='cpu', providers=('cpu',), cpu_backend='opencv',
                        postprocess='device'),
    'cpu-hostpost': dict(device='cpu', providers=('cpu',), cpu_backend='opencv',
                         postprocess='host'),
}


def instrument(chain):
    """Wrap preprocessing and each model's engine run and decode with wall-clock timers."""
    stages = {}

    def wrap(owner, attribute, key):
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                stages.setdefault(key, []).append((time.perf_counter() - start) * 1e3)
        setattr(owner, attribute, timed)
    wrap(chain.preprocessor, 'run', 'preprocess')
    for model in chain.models:
        wrap(model.engine, 'run', f'{model.name}.engine')
        wrap(model.decoder, 'decode', f'{model.name}.decode')
    return stages


def time_case(setup, models, batch, jpeg, runs):
    """Per-frame median/p99 ms of process() and the median of each stage per call."""
    from dali_trt_ros.perception import PerceptionPipeline
    from dali_trt_ros.preprocess import EncodedFrame
    chain = PerceptionPipeline.from_models(list(models), max_batch=batch, **SETUPS[setup])
    try:
        stages = instrument(chain)
        frames = [EncodedFrame(jpeg, 'jpeg')] * batch
        for _ in range(8):
            results = chain.process(frames)
        assert all(r.error is None for r in results), [r.error for r in results]
        stages.clear()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            results = chain.process(frames)
            times.append((time.perf_counter() - start) * 1e3 / batch)
        top = results[0].detections[SSD]
        per_call = {key: statistics.median(values) * len(values) / runs
                    for key, values in stages.items()}
        return {'setup': setup, 'models': '+'.join(m.split('_')[0] for m in models),
                'batch': batch, 'runs': runs, 'median_ms': statistics.median(times),
                'p99_ms': float(np.percentile(times, 99)),
                'stage_ms_per_call': per_call,
                'preprocess': chain.preprocessor.backend,
                'top': [top.labels[0], round(float(top.scores[0]), 3)] if len(top) else None}
    finally:
        chain.close()


def goal_lines(rows):
    """Return the issue's goal checks against the measured rows (gpu-devpost set-ups)."""
    lines = []
    for set_name, goal in GOALS_MS.items():
        for setup in ('gpu-devpost', 'gpu-devpost-fp16'):
            b1 = next((r for r in rows if r.get('setup') == setup and r.get('set') == set_name
                       and r.get('batch') == 1 and 'median_ms' in r), None)
            b4 = next((r for r in rows if r.get('setup') == setup and r.get('set') == set_name
                       and r.get('batch') == 4 and 'median_ms' in r), None)
            if b1:
                verdict = 'MET' if b1['median_ms'] <= goal else \
                    f'NOT MET by {b1["median_ms"] - goal:.2f} ms'
                lines.append(f'- {setup} {set_name} batch 1 p50 {b1["median_ms"]:.2f} ms '
                             f'(goal <= {goal} ms): {verdict}')
            if b1 and b4:
                share = b4['median_ms'] / b1['median_ms']
                lines.append(f'- {setup} {set_name} batch 4 per frame {b4["median_ms"]:.2f} ms '
                             f'= {100 * share:.0f} % of batch 1 (goal <= 40 %): '
                             f'{"MET" if share <= 0.4 else "NOT MET"}')
    return lines


def markdown(rows):
    """Table + goal lines."""
    lines = ['| set-up | models | batch | median ms/frame | p99 ms/frame | stages ms per call '
             '(median) | top |', '|---|---|---|---|---|---|---|']
    for r in rows:
        if 'error' in r:
            lines.append(f"| {r['setup']} | {r['set']} | {r['batch']} | error: "
                         f"{r['error'][:150]} ||||")
            continue
        stages = ', '.join(f'{k.split("_")[0].split(".")[0]}.{k.split(".")[-1]} {v:.2f}'
                           if '.' in k else f'{k} {v:.2f}'
                           for k, v in r['stage_ms_per_call'].items())
        lines.append(f"| {r['setup']} | {r['set']} | {r['batch']} | {r['median_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {stages} | {r['top']} |")
    return '\n'.join(lines + [''] + goal_lines(rows))


def main(argv=None):
    """Run every case; write partial JSON after each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--setups', default='gpu-devpost,gpu-devpost-fp16,gpu-hostpost,'
                        'opencv+ort-cuda')
    parser.add_argument('--sets', default=','.join(MODEL_SETS))
    parser.add_argument('--batches', default='1,4')
    parser.add_argument('--runs', type=int, default=60)
    parser.add_argument('--out')
    args = parser.parse_args(argv)
    from dali_trt_ros.tools.bench_chain import test_frame
    jpeg = test_frame()
    out = pathlib.Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    rows = []
    for set_name in args.sets.split(','):
        for setup in args.setups.split(','):
            for batch in (int(b) for b in args.batches.split(',')):
                try:
                    row = time_case(setup, MODEL_SETS[set_name], batch, jpeg, args.runs)
                except Exception as error:  # noqa: BLE001 - keep the other cases
                    row = {'setup': setup, 'batch': batch, 'error': str(error)[:500]}
                row['set'] = set_name
                rows.append(row)
                print(json.dumps(row), flush=True)
                if out:
                    (out / 'chain_goals.json').write_text(json.dumps(rows, indent=1))
    text = markdown(rows)
    print(text)
    if out:
        (out / 'chain_goals.md').write_text(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
