"""process_bag throughput: frames/s of camera bag -> PerceptionPipeline -> output bag (masks in).

Writes a bag of JPEG camera frames (default 2 cameras x 150 frames at 1920x1080, panning across
the scikit-image photos), then for each set-up processes the whole bag with the real
BagProcessor (rosbags reader and writer, mcap, detections AND mono8 masks written) after a
warm-up on a short bag, and prints one table: frames/s, time in the pipeline vs wall time, and
the ratio to the same set-up at batch 1. Results go to --out/results.json as each set-up ends,
so one failure keeps the others.

Set-ups, NAME = PREPROCESS-PROVIDER-bBATCH[-fp16]:
  gpu-cuda-b1, gpu-cuda-b16         DALI on the GPU (nvJPEG) + ONNX Runtime CUDA
  cpu-cuda-b16                      OpenCV on the CPU + ONNX Runtime CUDA (the obvious baseline)
  cpu-cpu-b1, cpu-cpu-b8            CPU only (what this package does without a GPU)
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODELS = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation')
CPU_SETUPS = 'cpu-cpu-b1,cpu-cpu-b8'
GPU_SETUPS = ('gpu-cuda-b1,gpu-cuda-b8,gpu-cuda-b16,gpu-cuda-b32,gpu-cuda-b1-fp16,'
              'gpu-cuda-b16-fp16,gpu-cuda-b32-fp16,cpu-cuda-b16')


def parse_setup(name):
    """'gpu-cuda-b16-fp16' -> dict(device, providers, batch, precision)."""
    parts = name.split('-')
    if len(parts) not in (3, 4) or parts[0] not in ('gpu', 'cpu') or \
            parts[1] not in ('cuda', 'cpu') or not parts[2].startswith('b'):
        raise ValueError(f'set-up {name!r}: expected gpu|cpu-cuda|cpu-bN[-fp16]')
    return {'device': parts[0], 'providers': (parts[1],) if parts[1] == 'cpu' else ('cuda',),
            'batch': int(parts[2][1:]), 'precision': parts[3] if len(parts) == 4 else 'fp32'}


def make_input(folder, frames, width, height, photo_folder):
    """JPEG bags: the timed one and a short warm-up one; return their paths."""
    from dali_trt_ros.bags.synth import make_bag, PHOTOS

    cameras = [f'/cam_front/image_raw/compressed:jpeg:{width}x{height}',
               f'/cam_left/image_raw/compressed:jpeg:{width}x{height}']
    seconds = frames / 30.0 / len(PHOTOS)
    timed, warm = folder / 'input', folder / 'warmup'
    make_bag(timed, cameras=cameras, seconds_per_photo=seconds, photo_folder=photo_folder,
             overwrite=True)
    make_bag(warm, cameras=cameras, photos=PHOTOS[:1], seconds_per_photo=32 / 30.0,
             photo_folder=photo_folder, overwrite=True)
    return timed, warm


def run_setup(name, bags, folder, masks):
    """Process the bag with one set-up; return its result row."""
    from dali_trt_ros.bags.process import BagProcessor, build_pipeline

    setup = parse_setup(name)
    pipeline = build_pipeline(MODELS, setup['batch'], providers=setup['providers'],
                              device=setup['device'], precision=setup['precision'])
    try:
        timed, warm = bags
        BagProcessor(pipeline, setup['batch'], masks).process(
            warm, folder / f'{name}_warmup', overwrite=True)
        summary = BagProcessor(pipeline, setup['batch'], masks).process(
            timed, folder / f'{name}_out', overwrite=True)
        backend = pipeline.preprocessor.backend
    finally:
        pipeline.close()
        for suffix in ('_warmup', '_out'):  # 1080p masks: ~2 MB a frame, do not keep them
            shutil.rmtree(folder / f'{name}{suffix}', ignore_errors=True)
    return {'setup': name, **setup, 'providers': list(setup['providers']),
            'preprocessing': backend, 'frames': summary['frames_in'],
            'frames_out': summary['frames_out'], 'wall_s': summary['wall_s'],
            'pipeline_s': summary['compute_s'], 'frames_per_s': summary['frames_per_s'],
            'masks_written': masks}


def table(rows):
    """Markdown table with the ratio to the same set-up at batch 1."""
    base = {}
    for row in rows:
        if 'error' not in row and row['batch'] == 1:
            base[(row['device'], tuple(row['providers']), row['precision'])] = row['frames_per_s']
    lines = ['| set-up | preprocessing | batch | precision | frames | frames/s | pipeline s | '
             'wall s | vs batch 1 |', '|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        if 'error' in row:
            lines.append(f'| {row["setup"]} | failed: {row["error"][:120]} ||||||||')
            continue
        ref = base.get((row['device'], tuple(row['providers']), row['precision']))
        ratio = f'{row["frames_per_s"] / ref:.2f}x' if ref else '-'
        lines.append(f'| {row["setup"]} | {row["preprocessing"]} | {row["batch"]} | '
                     f'{row["precision"]} | {row["frames"]} | {row["frames_per_s"]:.1f} | '
                     f'{row["pipeline_s"]:.2f} | {row["wall_s"]:.2f} | {ratio} |')
    return '\n'.join(lines)


def main(argv=None):
    """Run the set-ups; print the table; exit 1 if a set-up failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('--setups', default=None,
                        help=f'comma list (default: GPU set-ups when CUDA is there: '
                             f'{GPU_SETUPS}; else {CPU_SETUPS})')
    parser.add_argument('--frames', type=int, default=150, help='frames per camera (2 cameras)')
    parser.add_argument('--size', default='1920x1080', help='frame size WxH')
    parser.add_argument('--photo-folder', help='photos (PNG/JPEG of synth.PHOTO_FILES) when '
                        'scikit-image is absent')
    parser.add_argument('--work-dir', help='where the bags go (default: a temporary folder)')
    parser.add_argument('--no-masks', action='store_true', help='detections only')
    parser.add_argument('--out', default='bench_process_bag', help='folder for results.json')
    args = parser.parse_args(argv)
    if args.setups is None:
        import onnxruntime
        on_gpu = 'CUDAExecutionProvider' in onnxruntime.get_available_providers()
        args.setups = GPU_SETUPS if on_gpu else CPU_SETUPS
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split('x'))
    folder = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix='bench_process_bag_'))
    started = time.monotonic()
    bags = make_input(folder, args.frames, width, height, args.photo_folder)
    print(f'input: {2 * args.frames} JPEG frames {width}x{height} in '
          f'{time.monotonic() - started:.1f} s ({folder})', flush=True)
    rows = []
    for name in args.setups.split(','):
        t0 = time.monotonic()
        try:
            row = run_setup(name, bags, folder, not args.no_masks)
        except Exception as error:  # noqa: B902 - one failing set-up must not lose the others
            row = {'setup': name, 'error': f'{type(error).__name__}: {error}'}
        rows.append(row)
        print(f'{name}: {row.get("frames_per_s", row.get("error"))} ({time.monotonic() - t0:.0f}'
              ' s)', flush=True)
        (out / 'results.json').write_text(json.dumps(
            {'frames_per_camera': args.frames, 'size': args.size, 'models': MODELS,
             'masks_written': not args.no_masks, 'rows': rows}, indent=1))
    text = table(rows)
    (out / 'table.md').write_text(text + '\n')
    print(text)
    return 1 if any('error' in row for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
