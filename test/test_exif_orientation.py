"""EXIF orientation is ignored everywhere: boxes and masks live in the stored pixel grid.

Camera drivers ignore the tag, and a detector's boxes are drawn on the frame as stored. A JPEG
carrying "rotate 90" (orientation 6) must give every CPU and DALI path the same pixels as the
same JPEG without the tag, and the overlay must be drawn on those pixels.
"""

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from dali_trt_ros.perception import PerceptionPipeline
from dali_trt_ros.preprocess import (DaliPreprocessor, detect_dali_mode, EncodedFrame,
                                     InputSpec, OpenCVPreprocessor, PreprocessSpec)
from dali_trt_ros.preprocess.inputs import decode_rgb, prepare_frame
from golden_photos import detection, SELFIE, SSD

ROTATE_90 = 6  # EXIF Orientation value: the viewer should rotate 90 degrees clockwise


def _jpeg(rgb, orientation=None):
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, 'JPEG', quality=92, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.fixture(scope='module')
def cat():
    """The chelsea photo (451 wide, 300 high) as JPEG with and without the rotate tag."""
    rgb = data.chelsea()
    tagged, plain = _jpeg(rgb, ROTATE_90), _jpeg(rgb)
    # The tag is real: a decoder that honours it turns the frame 300 wide, 451 high.
    assert cv2.imdecode(np.frombuffer(tagged, np.uint8), cv2.IMREAD_COLOR).shape == (451, 300, 3)
    return EncodedFrame(tagged, 'jpeg'), EncodedFrame(plain, 'jpeg')


def test_cpu_decode_keeps_the_stored_grid(cat):
    tagged, plain = cat
    pixels = decode_rgb(prepare_frame(tagged))
    assert pixels.shape == (300, 451, 3)
    np.testing.assert_array_equal(pixels, decode_rgb(prepare_frame(plain)))


@pytest.mark.parametrize('backend', ['opencv', 'dali', 'dali-gpu', 'dali-gpu-cpudecode'])
def test_preprocessors_ignore_the_tag(cat, backend):
    spec = PreprocessSpec((InputSpec('x', 300, 300, resize='letterbox'),), max_batch=2)
    if backend == 'opencv':
        preprocessor = OpenCVPreprocessor(spec)
    elif backend == 'dali':
        preprocessor = DaliPreprocessor(spec, device_id=None)
    else:
        mode, why = detect_dali_mode(0)
        wanted = backend[len('dali-'):]
        if mode not in ('gpu', wanted):  # 'gpu' can run both; 'gpu-cpudecode' only its own
            pytest.skip(f'DALI cannot run {wanted} here: {why}')
        preprocessor = DaliPreprocessor(spec, device_id=0, mode=wanted)
    result = preprocessor.run(list(cat))
    assert result.errors == {}
    [geometry, _] = result.geometries['x']
    assert (geometry.orig_width, geometry.orig_height) == (451, 300)
    np.testing.assert_array_equal(result.tensors['x'][0], result.tensors['x'][1])


@pytest.mark.parametrize('cpu_backend', ['opencv', 'dali'])
def test_boxes_and_masks_of_a_tagged_frame_align_with_the_stored_pixels(cat, cpu_backend):
    chain = PerceptionPipeline.from_models([SSD, SELFIE], device='cpu', cpu_backend=cpu_backend,
                                           max_batch=2)
    try:
        tagged, plain = chain.process(list(cat))
    finally:
        chain.close()
    assert tagged.error is None and plain.error is None
    assert tagged.detections[SSD].labels[0] == detection('chelsea')['label']
    np.testing.assert_array_equal(tagged.detections[SSD].boxes, plain.detections[SSD].boxes)
    assert tagged.segmentations[SELFIE].label_map.shape == (300, 451)
    np.testing.assert_array_equal(tagged.segmentations[SELFIE].label_map,
                                  plain.segmentations[SELFIE].label_map)
