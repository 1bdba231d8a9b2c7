"""Pick the preprocessing backend this machine can run best, and say why in one log line.

GPU: DALI with nvJPEG ('mixed') decoding when a tiny JPEG decodes that way; otherwise CPU decode
+ GPU resize (Jetson DALI builds have shipped without nvJPEG). No GPU: the CPU backend chosen
by measurement (see CPU_BACKEND).
"""

import logging

from dali_trt_ros.errors import ConfigError

LOG = logging.getLogger(__name__)

# Measured with bench_preprocess on a 2-core x86 machine (docs/benchmarks.md, Preprocessing):
# the OpenCV/Pillow path beat DALI's CPU backend for JPEG and raw at 720p/1080p, batch 1 and 4.
CPU_BACKEND = 'opencv'
CPU_BACKENDS = ('opencv', 'dali')


def _probe_jpeg():
    """Make a small, valid JPEG on the spot (no asset needed at run time)."""
    import cv2
    import numpy as np

    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    ok, encoded = cv2.imencode('.jpg', np.dstack([ramp, ramp.T, ramp]))
    return np.frombuffer(encoded.tobytes(), np.uint8)


def _try_gpu_pipeline(device_id, decoder_device):
    """Decode + resize one JPEG on the GPU; raise whatever DALI raises."""
    from nvidia import dali
    from nvidia.dali import fn, types

    pipe = dali.Pipeline(batch_size=1, num_threads=1, device_id=device_id,
                         prefetch_queue_depth=1)
    with pipe:
        data = fn.external_source(name='probe', dtype=types.UINT8, ndim=1)
        image = fn.decoders.image(data, device=decoder_device, output_type=types.RGB,
                                  adjust_orientation=False)
        if decoder_device == 'cpu':
            image = image.gpu()
        pipe.set_outputs(fn.resize(image, device='gpu', size=[8.0, 8.0]))
    pipe.build()
    pipe.feed_input('probe', [_probe_jpeg()])
    (out,) = pipe.run()
    if tuple(out.as_cpu().as_array().shape) != (1, 8, 8, 3):
        raise RuntimeError('probe pipeline returned an unexpected shape')


def detect_dali_mode(device_id=0):
    """Return (mode, reason): 'gpu', 'gpu-cpudecode' or 'cpu' (None when DALI is missing)."""
    try:
        import nvidia.dali.backend as dali_backend
    except ImportError as error:
        return None, f'DALI is not importable ({error})'
    try:
        count = dali_backend.GetCUDADeviceCount()
    except Exception as error:  # no driver: DALI raises rather than returning 0
        return 'cpu', f'no CUDA driver ({error})'
    if count <= device_id:
        return 'cpu', f'no CUDA device {device_id} visible to DALI ({count} found)'
    try:
        _try_gpu_pipeline(device_id, 'mixed')
        return 'gpu', f'nvJPEG (mixed) decoding works on GPU {device_id}'
    except Exception as error:
        mixed_failure = ' '.join(str(error).split())[:160]
    try:
        _try_gpu_pipeline(device_id, 'cpu')
        return 'gpu-cpudecode', (f'mixed decoder unusable ({mixed_failure}); decoding on CPU, '
                                 f'resizing on GPU {device_id}')
    except Exception as error:
        gpu_failure = ' '.join(str(error).split())[:160]
        return 'cpu', f'GPU {device_id} not usable by DALI ({gpu_failure})'


def create_preprocessor(spec, device=None, device_id=0, cpu_backend=None, num_threads=None,
                        logger=None):
    """Create the best preprocessor for ``spec`` here and log one line saying what and why.

    ``device`` ('auto', 'gpu', 'cpu'; default ``spec.device``): 'gpu' fails with ConfigError
    when no GPU path works; 'cpu' never touches the GPU. ``cpu_backend`` ('opencv' or 'dali')
    overrides the measured CPU choice.
    """
    from dali_trt_ros.preprocess.dali_backend import DaliPreprocessor
    from dali_trt_ros.preprocess.opencv_backend import OpenCVPreprocessor

    logger = logger or LOG
    device = device or spec.device
    cpu_backend = cpu_backend or CPU_BACKEND
    if device not in ('auto', 'gpu', 'cpu'):
        raise ConfigError(f'device = {device!r} is not one of auto, gpu, cpu')
    if cpu_backend not in CPU_BACKENDS:
        raise ConfigError(
            f'cpu_backend = {cpu_backend!r} is not one of {", ".join(CPU_BACKENDS)}')
    if device == 'cpu':
        mode, reason = 'cpu', 'device=cpu requested'
    else:
        mode, reason = detect_dali_mode(device_id)
        if mode in (None, 'cpu') and device == 'gpu':
            raise ConfigError(f'device=gpu requested but no GPU preprocessing works: {reason}; '
                              'set device to auto or cpu')
    if mode in ('gpu', 'gpu-cpudecode'):
        preprocessor = DaliPreprocessor(spec, device_id, mode=mode, num_threads=num_threads)
    elif cpu_backend == 'dali' and mode is not None:
        preprocessor = DaliPreprocessor(spec, None, mode='cpu', num_threads=num_threads)
        reason += '; DALI CPU backend requested'
    else:
        preprocessor = OpenCVPreprocessor(spec, num_threads=num_threads)
        reason += ('; OpenCV is the faster CPU path (measured)' if cpu_backend == 'opencv'
                   else '; DALI missing, using OpenCV')
    logger.info('preprocessing backend %s: %s', preprocessor.backend, reason)
    return preprocessor
