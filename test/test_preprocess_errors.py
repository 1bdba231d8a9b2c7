"""Bad frames raise typed errors per frame; the rest of the batch and the next frame are fine."""

import re
import struct

import numpy as np
import pytest

from dali_trt_ros.errors import (CorruptImageError, FrameError, MalformedFrameError,
                                 UnsupportedEncodingError)
from dali_trt_ros.preprocess.dali_backend import DaliPreprocessor
from dali_trt_ros.preprocess.inputs import EncodedFrame, prepare_frame, RawFrame
from dali_trt_ros.preprocess.opencv_backend import OpenCVPreprocessor
from dali_trt_ros.preprocess.spec import InputSpec, PreprocessSpec

SPEC = PreprocessSpec((InputSpec('det', 300, 300, mean=127.5, std=127.5),
                       InputSpec('seg', 128, 96, resize='letterbox', layout='NHWC')),
                      max_batch=4)


def _jpeg(image):
    import cv2
    return cv2.imencode('.jpg', image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.fixture(scope='module')
def photos():
    from skimage import data
    return data.astronaut(), data.chelsea()


@pytest.fixture(scope='module')
def good_frames(photos):
    astronaut, chelsea = photos
    return [EncodedFrame(_jpeg(astronaut), 'jpeg'),
            RawFrame(chelsea.tobytes(), 451, 300, 'rgb8', 451 * 3)]


def _sof_offset(jpeg):
    return jpeg.index(b'\xff\xc0')


def corrupt_after_frame_header(jpeg):
    """Overwrite the tables and data after the frame header; SOI, SOF and EOI stay valid.

    (Garbage only inside the entropy-coded data is not detectable: libjpeg-turbo and nvJPEG
    decode it with a warning, so it is no test of error handling.)
    """
    damaged = bytearray(jpeg)
    start = _sof_offset(jpeg) + 19
    damaged[start:start + 3000] = bytes([7]) * 3000
    return bytes(damaged)


def with_sof_size(jpeg, width, height):
    """The same JPEG with its frame header claiming another size."""
    damaged = bytearray(jpeg)
    struct.pack_into('>HH', damaged, _sof_offset(jpeg) + 5, height, width)
    return bytes(damaged)


def bad_frames(photos):
    """name -> (frame, expected error type, text the message must contain)."""
    astronaut, chelsea = photos
    jpeg = _jpeg(astronaut)
    raw = chelsea.tobytes()
    return {
        'truncated_jpeg': (EncodedFrame(jpeg[:len(jpeg) // 2], 'jpeg'), CorruptImageError,
                           'truncated'),
        'corrupt_jpeg_data': (EncodedFrame(corrupt_after_frame_header(jpeg), 'jpeg'),
                              CorruptImageError, 'decode'),
        'jpeg_without_header': (EncodedFrame(b'\xff\xd8\xff\xda' + jpeg[4:], 'jpeg'),
                                CorruptImageError, 'frame header'),
        'not_an_image': (EncodedFrame(b'GIF89a' + bytes(100), 'gif'),
                         UnsupportedEncodingError, 'jpeg or png'),
        'tiff_format': (EncodedFrame(b'II*\x00' + bytes(100), 'bgr8; tiff compressed'),
                        UnsupportedEncodingError, 'tiff'),
        'empty_compressed': (EncodedFrame(b'', 'jpeg'), MalformedFrameError, 'zero bytes'),
        'jpeg_zero_size': (EncodedFrame(with_sof_size(jpeg, 0, 0), 'jpeg'),
                           MalformedFrameError, '0x0'),
        'jpeg_absurd_size': (EncodedFrame(with_sof_size(jpeg, 60000, 60000), 'jpeg'),
                             MalformedFrameError, '60000x60000'),
        'raw_short_data': (RawFrame(raw[:-10], 451, 300, 'rgb8'), MalformedFrameError,
                           'step*height'),
        'raw_step_too_small': (RawFrame(raw, 451, 300, 'rgb8', 451), MalformedFrameError,
                               'step'),
        'raw_zero_size': (RawFrame(b'', 0, 0, 'rgb8'), MalformedFrameError, '0x0'),
        'raw_absurd_size': (RawFrame(raw, 100000, 3, 'rgb8'), MalformedFrameError, '100000'),
        'raw_unsupported_encoding': (RawFrame(raw, 451, 300, 'bayer_rggb8'),
                                     UnsupportedEncodingError, 'bayer_rggb8'),
        'raw_16bit': (RawFrame(raw, 451, 300, '16UC1'), UnsupportedEncodingError, 'mono8'),
        'not_a_frame': (np.zeros((4, 4, 3), np.uint8), UnsupportedEncodingError,
                        'EncodedFrame'),
    }


def test_host_checks_raise_typed_errors(photos):
    for name, (frame, error_type, text) in bad_frames(photos).items():
        if name == 'corrupt_jpeg_data':
            prepare_frame(frame)  # headers are intact: only a decoder can tell
            continue
        with pytest.raises(error_type, match=re.escape(text)):
            prepare_frame(frame)


@pytest.fixture(scope='module', params=['dali-cpu', 'opencv'])
def preprocessor(request):
    if request.param == 'opencv':
        return OpenCVPreprocessor(SPEC)
    return DaliPreprocessor(SPEC, device_id=None)


def test_each_bad_frame_fails_alone_and_the_next_frame_works(preprocessor, photos, good_frames):
    for name, (frame, error_type, text) in bad_frames(photos).items():
        result = preprocessor.run([frame])
        assert list(result.errors) == [0], name
        error = result.errors[0]
        assert isinstance(error, error_type) and isinstance(error, FrameError), (name, error)
        assert text in str(error), (name, str(error))
        assert result.tensors['det'].shape == (0, 3, 300, 300)
        following = preprocessor.run(good_frames)
        assert following.errors == {} and following.frame_indices == [0, 1], name
        assert np.isfinite(following.tensors['det']).all()
        assert following.tensors['det'].std() > 0.1  # real photo content, not a blank tensor


def test_bad_frames_inside_a_batch_leave_the_others_intact(preprocessor, photos, good_frames):
    bad = bad_frames(photos)
    batch = [good_frames[0], bad['corrupt_jpeg_data'][0], good_frames[1],
             bad['raw_short_data'][0], good_frames[0], bad['truncated_jpeg'][0]]
    result = preprocessor.run(batch)
    assert sorted(result.errors) == [1, 3, 5]
    assert isinstance(result.errors[1], CorruptImageError)
    assert isinstance(result.errors[3], MalformedFrameError)
    assert result.frame_indices == [0, 2, 4]
    alone = preprocessor.run(good_frames)
    np.testing.assert_array_equal(result.tensors['det'][0], alone.tensors['det'][0])
    np.testing.assert_array_equal(result.tensors['det'][1], alone.tensors['det'][1])
    np.testing.assert_array_equal(result.tensors['seg'][2], alone.tensors['seg'][0])
    assert [g.orig_width for g in result.geometries['seg']] == [512, 451, 512]
