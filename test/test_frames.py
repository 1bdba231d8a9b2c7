"""Raw ROS image buffers as NumPy views: layouts, padding, zero copy and typed errors."""

import array

import numpy as np
import pytest

from dali_trt_ros.errors import MalformedFrameError, UnsupportedEncodingError
from dali_trt_ros.frames import MAX_DIMENSION, raw_frame_view


@pytest.mark.parametrize('encoding,channels', [
    ('rgb8', 3), ('bgr8', 3), ('rgba8', 4), ('bgra8', 4), ('mono8', 1),
    ('yuv422', 2), ('yuv422_yuy2', 2)])
@pytest.mark.parametrize('pad', [0, 13])
def test_view_matches_pixels_and_shares_memory(encoding, channels, pad):
    height, width = 5, 6
    step = width * channels + pad
    rows = np.arange(height * step, dtype=np.uint32).astype(np.uint8).reshape(height, step)
    data = array.array('B', rows.tobytes())  # what rclpy hands the callback
    view = raw_frame_view(data, height, width, encoding, step)
    assert view.shape == (height, width, channels)
    np.testing.assert_array_equal(view.reshape(height, -1), rows[:, :width * channels])
    data[step + 1] = 77  # row 1, byte 1: the view must see it, so nothing was copied
    assert view.reshape(height, -1)[1, 1] == 77


def test_step_zero_means_packed():
    view = raw_frame_view(bytes(2 * 3 * 3), 2, 3, 'rgb8', 0)
    assert view.shape == (2, 3, 3)


@pytest.mark.parametrize('kwargs,message', [
    (dict(data=bytes(10), height=2, width=3, encoding='rgb8', step=9), 'data has 10 bytes'),
    (dict(data=bytes(18), height=2, width=3, encoding='rgb8', step=8), 'step 8 is smaller'),
    (dict(data=b'', height=0, width=0, encoding='rgb8'), 'outside 1..'),
    (dict(data=b'', height=MAX_DIMENSION + 1, width=10, encoding='mono8'), 'outside 1..'),
    (dict(data=bytes(6), height=1, width=3, encoding='yuv422'), 'even width'),
])
def test_malformed_frames_raise_with_reason(kwargs, message):
    with pytest.raises(MalformedFrameError, match=message) as info:
        raw_frame_view(**kwargs)
    assert info.value.reason == 'malformed_frame'


def test_unsupported_encoding_names_alternatives():
    with pytest.raises(UnsupportedEncodingError, match="'bayer_rggb8'.*rgb8") as info:
        raw_frame_view(bytes(4), 2, 2, 'bayer_rggb8')
    assert info.value.reason == 'unsupported_encoding'
