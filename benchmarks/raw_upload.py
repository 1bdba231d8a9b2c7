"""Where raw (rgb8) frames spend their time in the DALI GPU path, and what pinned memory buys.

bench_preprocess measured raw 720p frames with antialiasing at 2.34 ms/frame at batch 4 vs 1.68
at batch 1 (H100): batching did not help. This splits one ``DaliPreprocessor.run`` into host
preparation, ``feed_input``, ``pipe.run`` and the copy of the output to the host, for batch 1 and
4, antialiasing on and off; and times an upload-only DALI graph (external_source -> .gpu())
fed from pageable NumPy memory, from pinned memory (cudaHostAlloc) and from pinned memory with
``no_copy=True``, to show what the upload costs and what pinning changes.

Run (GPU machine): ``python benchmarks/raw_upload.py --out $OUT/raw_upload``.
"""

import argparse
import ctypes
import json
import pathlib
import statistics
import sys
import time

import numpy as np

from cudart import cudart, synchronize

SIZES = {'720p': (1280, 720), '1080p': (1920, 1080)}


def pinned_array(shape):
    """Return a NumPy array over page-locked host memory (cudaHostAlloc, never freed)."""
    lib = cudart()
    pointer = ctypes.c_void_p()
    nbytes = int(np.prod(shape))
    code = lib.cudaHostAlloc(ctypes.byref(pointer), ctypes.c_size_t(nbytes), ctypes.c_uint(0))
    if code != 0:
        raise RuntimeError(f'cudaHostAlloc failed ({code})')
    buffer = (ctypes.c_uint8 * nbytes).from_address(pointer.value)
    return np.frombuffer(buffer, np.uint8).reshape(shape)


def median(values):
    """Median in ms of seconds."""
    return statistics.median(values) * 1e3


def stage_split(size, batch, antialias, runs):
    """Median ms per run of each stage of DaliPreprocessor.run on raw frames."""
    from dali_trt_ros.preprocess.dali_backend import DaliPreprocessor
    from dali_trt_ros.preprocess.result import geometries_for, prepare_batch
    from dali_trt_ros.tools.bench_preprocess import benchmark_spec, make_frames
    spec = benchmark_spec(batch, antialias=antialias)
    pre = DaliPreprocessor(spec, 0, mode='gpu')
    frames = make_frames(size, 'raw', batch)
    stages = {'prepare': [], 'feed+run': [], 'copy_out': [], 'total': []}
    for index in range(runs + 5):
        t0 = time.perf_counter()
        prepared, _ = prepare_batch(frames, spec.max_pixels)
        geometries = geometries_for(spec, prepared)
        t1 = time.perf_counter()
        rows = list(enumerate(p for _, p in prepared))
        outputs = pre._feed_and_run('raw', rows, geometries)
        synchronize()
        t2 = time.perf_counter()
        outputs[0].as_cpu().as_array()
        t3 = time.perf_counter()
        if index >= 5:
            for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                stages[key].append(value)
    return {'size': size, 'batch': batch, 'antialias': antialias,
            **{f'{k}_ms': median(v) for k, v in stages.items()},
            'total_per_frame_ms': median(stages['total']) / batch}


def upload_only(size, batch, memory, runs):
    """Median ms of an external_source -> .gpu() graph run, by kind of host memory fed."""
    from nvidia import dali
    width, height = SIZES[size]
    pipe = dali.Pipeline(batch_size=batch, num_threads=2, device_id=0, prefetch_queue_depth=1)
    with pipe:
        frames = dali.fn.external_source(name='frames', dtype=dali.types.UINT8, ndim=3,
                                         layout='HWC')
        pipe.set_outputs(frames.gpu())
    pipe.build()
    rng = np.random.default_rng(0)
    source = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    if memory == 'pageable':
        arrays = [source.copy() for _ in range(batch)]
    else:
        arrays = []
        for _ in range(batch):
            array = pinned_array(source.shape)
            array[...] = source
            arrays.append(array)
    no_copy = memory == 'pinned-no-copy'
    times = []
    for index in range(runs + 5):
        start = time.perf_counter()
        pipe.feed_input('frames', arrays, no_copy=no_copy)
        pipe.run()
        synchronize()  # the upload has landed on the GPU
        if index >= 5:
            times.append(time.perf_counter() - start)
    megabytes = batch * source.nbytes / 1e6
    ms = median(times)
    return {'size': size, 'batch': batch, 'memory': memory, 'upload_ms': ms,
            'per_frame_ms': ms / batch, 'GB_per_s': megabytes / ms}


def main(argv=None):
    """Run both parts; write raw_upload.json after each case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=40)
    parser.add_argument('--out')
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    report = {'stages': [], 'upload': []}

    def save(key, item):
        report[key].append(item)
        print(json.dumps(item), flush=True)
        if out:
            (out / 'raw_upload.json').write_text(json.dumps(report, indent=1))
    for size in SIZES:
        for antialias in (True, False):
            for batch in (1, 4):
                try:
                    save('stages', stage_split(size, batch, antialias, args.runs))
                except Exception as error:  # noqa: BLE001 - keep the other cases
                    save('stages', {'size': size, 'batch': batch, 'antialias': antialias,
                                    'error': str(error)[:400]})
        for memory in ('pageable', 'pinned', 'pinned-no-copy'):
            for batch in (1, 4):
                try:
                    save('upload', upload_only(size, batch, memory, args.runs))
                except Exception as error:  # noqa: BLE001
                    save('upload', {'size': size, 'batch': batch, 'memory': memory,
                                    'error': str(error)[:400]})
    return 0


if __name__ == '__main__':
    sys.exit(main())
