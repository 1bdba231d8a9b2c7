"""Decode memory is bounded before decoding: pixel budget and accepted pixel formats.

Bombs are real files (test/hostile_frames.py): without the budget, a 630-byte JPEG declaring
16384x16384 decodes to 805 MB in 2-6 s. The time/memory test runs in its own process so peak
RSS (ru_maxrss) measures only the bombs.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dali_trt_ros.errors import (ConfigError, ImageTooLargeError, MalformedFrameError,
                                 UnsupportedPixelFormatError)
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS
from dali_trt_ros.preprocess import (DaliPreprocessor, EncodedFrame, InputSpec, PreprocessSpec,
                                     OpenCVPreprocessor, RawFrame)
from dali_trt_ros.preprocess.inputs import prepare_frame
from dali_trt_ros.tools import hostile_frames

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = PreprocessSpec((InputSpec('det', 64, 64),))


@pytest.fixture(scope='module')
def photo():
    from skimage import data
    return data.astronaut()[::4, ::4].copy()  # 128x128


def test_default_budget_admits_dci_8k_and_refuses_more():
    assert DEFAULT_MAX_PIXELS == 8192 * 4320
    at_budget = hostile_frames.with_sof(hostile_frames.small_jpeg(), 8192, 4320)
    assert prepare_frame(EncodedFrame(at_budget)).width == 8192
    with pytest.raises(ImageTooLargeError, match=r'8192x4321 = 35397632 pixels'):
        too_large = hostile_frames.with_sof(hostile_frames.small_jpeg(), 8192, 4321)
        prepare_frame(EncodedFrame(too_large))


@pytest.mark.parametrize('make', [hostile_frames.jpeg_bomb, hostile_frames.png_bomb_1bit,
                                  hostile_frames.png_bomb_gray8])
def test_bombs_are_refused_by_their_header(make):
    bomb = make()
    assert len(bomb) < 300_000
    with pytest.raises(ImageTooLargeError, match='16384x16384') as info:
        prepare_frame(EncodedFrame(bomb, 'jpeg' if bomb[:2] == b'\xff\xd8' else 'png'))
    assert info.value.reason == 'image_too_large'
    assert 'max_pixels' in str(info.value)


def test_raw_frames_count_against_the_budget_too():
    rgb = np.zeros((20, 30, 3), np.uint8)
    frame = RawFrame(rgb.tobytes(), 30, 20, 'rgb8')
    assert prepare_frame(frame, max_pixels=600).width == 30
    with pytest.raises(ImageTooLargeError, match='30x20 = 600 pixels, more than max_pixels = 599'):
        prepare_frame(frame, max_pixels=599)


@pytest.mark.parametrize('backend', ['opencv', 'dali-cpu'])
def test_budget_from_the_spec_applies_to_each_backend(backend, photo):
    spec = PreprocessSpec(SPEC.inputs, max_pixels=128 * 127)
    preprocessor = OpenCVPreprocessor(spec) if backend == 'opencv' \
        else DaliPreprocessor(spec, device_id=None)
    result = preprocessor.run([EncodedFrame(hostile_frames.small_jpeg(photo)),
                               RawFrame(photo[:127].tobytes(), 128, 127, 'rgb8')])
    assert list(result.errors) == [0] and isinstance(result.errors[0], ImageTooLargeError)
    assert result.frame_indices == [1]


@pytest.mark.parametrize('value', [0, -1, 1.5, True, '1000', 16384 * 16384 + 1])
def test_max_pixels_is_validated(value):
    with pytest.raises(ConfigError, match='max_pixels'):
        PreprocessSpec(SPEC.inputs, max_pixels=value)


def test_max_pixels_from_a_configuration_mapping():
    spec = PreprocessSpec.from_dict({'inputs': [{'name': 'x', 'width': 8, 'height': 8}],
                                     'max_pixels': 1920 * 1080})
    assert spec.max_pixels == 1920 * 1080
    assert PreprocessSpec(SPEC.inputs).max_pixels == DEFAULT_MAX_PIXELS


def test_pipeline_from_models_passes_the_budget(photo):
    from dali_trt_ros.perception import PerceptionPipeline
    pipeline = PerceptionPipeline.from_models(['selfie_segmentation'], device='cpu',
                                              max_pixels=100 * 100)
    try:
        assert pipeline.max_pixels == 100 * 100
        [refused, fine] = pipeline.process([EncodedFrame(hostile_frames.small_jpeg(photo)),
                                            RawFrame(photo[:50].tobytes(), 128, 50, 'rgb8')])
        assert isinstance(refused.error, ImageTooLargeError)
        assert fine.error is None and fine.segmentations
    finally:
        pipeline.close()


def refused_formats(photo):
    """name -> file bytes the pipeline refuses (real files where a writer exists)."""
    jpeg = hostile_frames.small_jpeg(photo)
    return {
        'png_16bit_gray': hostile_frames.pillow_png(photo, 'I;16'),
        'png_16bit_rgb': hostile_frames.make_png(16, 16, bit_depth=16, color_type=2),
        'png_palette': hostile_frames.pillow_png(photo, 'P'),
        'png_1bit': hostile_frames.pillow_png(photo, '1'),
        'png_interlaced': hostile_frames.make_png(1, 1, color_type=2, interlace=1),
        'jpeg_cmyk': _pillow_jpeg(photo, 'CMYK'),
        'jpeg_12bit': hostile_frames.with_sof(jpeg, precision=12),
        'jpeg_lossless': hostile_frames.with_sof(jpeg, marker=0xC3),
        'jpeg_arithmetic': hostile_frames.with_sof(jpeg, marker=0xC9),
        'jpeg_100_scans': hostile_frames.progressive_jpeg_with_scans(photo, 100),
    }


def _pillow_jpeg(rgb, mode):
    import io

    from PIL import Image
    stream = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(stream, 'JPEG')
    return stream.getvalue()


def test_unneeded_pixel_formats_are_refused_with_a_reason(photo):
    for name, data in refused_formats(photo).items():
        with pytest.raises(UnsupportedPixelFormatError) as info:
            prepare_frame(EncodedFrame(data))
        assert info.value.reason == 'unsupported_pixel_format', name
        assert 'publish' in str(info.value), (name, str(info.value))  # says what to do


@pytest.mark.parametrize('backend', ['opencv', 'dali-cpu'])
def test_accepted_formats_decode_to_the_photo(backend, photo):
    """8-bit gray/gray+alpha/RGB/RGBA PNG, gray and progressive JPEG decode on both paths."""
    spec = PreprocessSpec((InputSpec('x', 128, 128),))
    preprocessor = OpenCVPreprocessor(spec) if backend == 'opencv' \
        else DaliPreprocessor(spec, device_id=None)
    from PIL import Image
    gray = np.asarray(Image.fromarray(photo).convert('L'))[:, :, None]
    accepted = {
        'png_rgb': (hostile_frames.pillow_png(photo, 'RGB'), photo, 0),
        'png_rgba': (hostile_frames.pillow_png(photo, 'RGBA'), photo, 0),
        'png_gray': (hostile_frames.pillow_png(photo, 'L'), gray, 0),
        'png_gray_alpha': (hostile_frames.pillow_png(photo, 'LA'), gray, 0),
        'jpeg_gray': (_pillow_jpeg(photo, 'L'), gray, 12),
        'jpeg_progressive': (hostile_frames.progressive_jpeg_with_scans(photo, 10), photo, 12),
    }
    for name, (data, expected, tolerance) in accepted.items():
        result = preprocessor.run([EncodedFrame(data)])
        assert result.errors == {}, (name, result.errors)
        tensor = result.tensors['x'][0].transpose(1, 2, 0)
        error = np.abs(tensor - np.broadcast_to(expected, tensor.shape)).mean()
        assert error <= tolerance + 0.5, (name, error)


def test_header_lies_are_still_typed_errors():
    with pytest.raises(MalformedFrameError, match='0x16384'):
        prepare_frame(EncodedFrame(hostile_frames.with_sof(hostile_frames.small_jpeg(), 0, 16384)))


MEASURE = r'''
import json, resource, sys, time
import numpy as np
from dali_trt_ros.preprocess import (DaliPreprocessor, EncodedFrame, InputSpec, PreprocessSpec,
                                     OpenCVPreprocessor)
from dali_trt_ros.tools import hostile_frames

spec = PreprocessSpec((InputSpec('det', 300, 300),))
photo = np.random.default_rng(0).integers(0, 255, (64, 96, 3), np.uint8)
bombs = {'jpeg': hostile_frames.jpeg_bomb(), 'png_1bit': hostile_frames.png_bomb_1bit(),
         'png_gray8': hostile_frames.png_bomb_gray8(),
         'png_chunk_2gb': hostile_frames.png_with_huge_chunk(photo),
         'jpeg_segment_overrun': hostile_frames.jpeg_with_huge_segment(photo)}
good = EncodedFrame(hostile_frames.small_jpeg(np.full((480, 640, 3), 90, np.uint8)))
report = {}
for name, preprocessor in (('opencv', OpenCVPreprocessor(spec)),
                           ('dali-cpu', DaliPreprocessor(spec, device_id=None))):
    assert preprocessor.run([good]).errors == {}  # warm up: libraries and pools loaded
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for bomb_name, bomb in bombs.items():
        start = time.perf_counter()
        result = preprocessor.run([EncodedFrame(bomb)])
        seconds = time.perf_counter() - start
        growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        report[f'{name}/{bomb_name}'] = dict(
            seconds=seconds, peak_growth_mb=growth_mb,
            error=type(result.errors.get(0)).__name__,
            next_frame_ok=preprocessor.run([good]).errors == {})
print(json.dumps(report))
'''


def test_bombs_cost_no_time_and_no_memory_on_both_paths():
    """Each bomb refused in < 0.5 s with < 100 MB peak RSS growth; the next frame is fine.

    Before the checks: the 16384x16384 bombs took 1.9-4.5 s and +1.8 GB (OpenCV), 1.9-2.4 s
    and +0.56 GB (DALI CPU); the PNG whose chunk claims 2 GB took 1.1 s and +2 GB (OpenCV).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(HERE), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', MEASURE, HERE], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report) == 10
    for case, figures in report.items():
        expected = 'CorruptImageError' if ('chunk' in case or 'segment' in case) \
            else 'ImageTooLargeError'
        assert figures['error'] == expected, (case, figures)
        assert figures['seconds'] < 0.5, (case, figures)
        assert figures['peak_growth_mb'] < 100, (case, figures)
        assert figures['next_frame_ok'], (case, figures)
