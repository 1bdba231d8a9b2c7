"""Segmentation decoding on constructed tensors: layouts, thresholds, geometry, drawing."""

import numpy as np
import pytest

from dali_trt_ros.decoders import (SegmentationDecoder, cityscapes_palette, decoder_from_config,
                                   draw_detections, overlay, palette_by_name, voc_palette)
from dali_trt_ros.decoders.results import Detections
from dali_trt_ros.errors import BindingMismatchError, ConfigError
from dali_trt_ros.preprocess.geometry import FrameGeometry

VOC_LABELS = ['background', 'aeroplane', 'bicycle']
# 200x100 original into a 64x64 letterboxed input: scale 0.32, content rows 16..48.
LETTERBOX = FrameGeometry.letterbox(200, 100, 64, 64)


def logits_decoder(layout='NCHW', labels=VOC_LABELS):
    return SegmentationDecoder.from_config(
        {'type': 'segmentation', 'output': 'out', 'kind': 'logits', 'layout': layout}, labels)


def one_hot_logits(class_map, num_classes, layout):
    """NCHW or NHWC logits whose argmax is ``class_map`` (1, H, W)."""
    logits = np.eye(num_classes, dtype=np.float32)[class_map]  # (1, H, W, C)
    return logits if layout == 'NHWC' else logits.transpose(0, 3, 1, 2)


def test_argmax_nchw_equals_nhwc():
    rng = np.random.default_rng(0)
    nchw = rng.normal(size=(2, 5, 12, 16)).astype(np.float32)
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    geometry = FrameGeometry.stretch(16, 12, 16, 12)
    a = logits_decoder('NCHW').decode({'out': nchw}, [geometry] * 2)
    b = logits_decoder('NHWC').decode({'out': nhwc}, [geometry] * 2)
    for ra, rb, frame in zip(a, b, nchw):
        np.testing.assert_array_equal(ra.label_map, rb.label_map)
        np.testing.assert_array_equal(ra.label_map, frame.argmax(axis=0))
        assert ra.label_map.dtype == np.uint8


def test_letterboxed_rectangle_maps_to_the_right_original_pixels():
    class_map = np.zeros((1, 64, 64), np.int64)
    class_map[0, :16] = 2  # the top letterbox bar holds garbage; it must not leak
    class_map[0, 48:] = 2
    class_map[0, 24:32, 16:32] = 1  # input rows 24..32 = content rows 8..16
    [result] = logits_decoder().decode({'out': one_hot_logits(class_map, 3, 'NCHW')},
                                       [LETTERBOX])
    expected = np.zeros((100, 200), np.uint8)
    expected[25:50, 50:100] = 1  # 8 / 0.32 = 25 .. 16 / 0.32 = 50; 16 / 0.32 = 50 .. 100
    np.testing.assert_array_equal(result.label_map, expected)
    assert result.class_fractions == pytest.approx(
        {'background': 1 - 0.0625, 'aeroplane': 0.0625, 'bicycle': 0.0})


def test_output_smaller_than_input_is_scaled_through_the_geometry():
    class_map = np.zeros((1, 16, 16), np.int64)  # output stride 4 of the 64x64 input
    class_map[0, 6:8, 4:8] = 1  # input rows 24..32, columns 16..32
    [result] = logits_decoder('NHWC').decode({'out': one_hot_logits(class_map, 3, 'NHWC')},
                                             [LETTERBOX])
    expected = np.zeros((100, 200), np.uint8)
    expected[25:50, 50:100] = 1
    np.testing.assert_array_equal(result.label_map, expected)


def test_stretch_upsampling_is_nearest_and_center_aligned():
    small = np.array([[[0, 1], [2, 3]]], np.int64)
    geometry = FrameGeometry.stretch(4, 4, 2, 2)
    dec = SegmentationDecoder('ids', ['a', 'b', 'c', 'd'], kind='argmax')
    [result] = dec.decode({'ids': small}, [geometry])
    np.testing.assert_array_equal(result.label_map, np.kron(small[0], np.ones((2, 2), int)))
    assert sum(result.class_fractions.values()) == pytest.approx(1.0)
    assert result.class_fractions['d'] == pytest.approx(0.25)


@pytest.mark.parametrize('shape', [(1, 1, 4, 4), (1, 4, 4, 1), (1, 4, 4)])
def test_probability_threshold_any_single_channel_shape(shape):
    probability = np.linspace(0, 1, 16, dtype=np.float32).reshape(shape)
    dec = SegmentationDecoder.from_config(
        {'type': 'segmentation', 'output': 'p', 'kind': 'probability',
         'probability_threshold': 0.5}, None)
    [result] = dec.decode({'p': probability}, [FrameGeometry.stretch(4, 4, 4, 4)])
    expected = (np.linspace(0, 1, 16) > 0.5).reshape(4, 4)
    np.testing.assert_array_equal(result.label_map, expected.astype(np.uint8))
    assert result.labels == ['background', 'foreground']
    assert result.class_fractions == pytest.approx({'background': 0.5, 'foreground': 0.5})
    dec.probability_threshold = 0.95  # run-time change: only the last value (1.0) exceeds it
    [result] = dec.decode({'p': probability}, [FrameGeometry.stretch(4, 4, 4, 4)])
    assert int(result.label_map.sum()) == 1
    with pytest.raises(ConfigError, match='probability_threshold'):
        dec.probability_threshold = 2


def test_fractions_sum_to_one_and_name_unknown_classes():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 5, (1, 30, 40))
    dec = SegmentationDecoder('ids', VOC_LABELS, kind='argmax')
    [result] = dec.decode({'ids': ids}, [FrameGeometry.letterbox(97, 61, 40, 30)])
    assert result.label_map.shape == (61, 97)
    assert sum(result.class_fractions.values()) == pytest.approx(1.0)
    assert set(result.class_fractions) == set(VOC_LABELS) | {'class_3', 'class_4'}
    # The weighted count on the small map equals counting the upsampled map itself.
    counted = np.bincount(result.label_map.ravel(), minlength=5) / result.label_map.size
    assert list(result.class_fractions.values()) == pytest.approx(counted.tolist(), abs=1e-12)


def test_shape_and_config_errors():
    dec = logits_decoder()
    with pytest.raises(BindingMismatchError, match='kind: probability'):
        dec.decode({'out': np.zeros((1, 1, 4, 4))}, [FrameGeometry.stretch(4, 4, 4, 4)])
    with pytest.raises(BindingMismatchError, match="'out' is missing"):
        dec.decode({'other': np.zeros((1, 3, 4, 4))}, [FrameGeometry.stretch(4, 4, 4, 4)])
    argmax = SegmentationDecoder('ids', kind='argmax')
    with pytest.raises(BindingMismatchError, match='at most 256'):
        argmax.decode({'ids': np.full((1, 2, 2), 300)}, [FrameGeometry.stretch(2, 2, 2, 2)])
    for change, key in [({'kind': 'soft'}, r'decoder\.kind'), ({'layout': 'CHW'}, 'layout'),
                        ({'output': None}, r'decoder\.output'), ({'thresh': 1}, 'thresh')]:
        mapping = dict({'type': 'segmentation', 'output': 'out'}, **change)
        with pytest.raises(ConfigError, match=key):
            decoder_from_config(mapping, VOC_LABELS)


def test_palettes():
    voc = voc_palette()
    assert voc.shape == (256, 3) and voc.dtype == np.uint8
    assert voc[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert voc[15].tolist() == [192, 128, 128]  # VOC 'person'
    assert len({tuple(c) for c in voc}) == 256
    city = cityscapes_palette()
    assert city[0].tolist() == [128, 64, 128] and city[13].tolist() == [0, 0, 142]
    np.testing.assert_array_equal(palette_by_name('voc', 21), voc[:21])
    with pytest.raises(ValueError, match='unknown palette'):
        palette_by_name('rainbow')


def test_colorize_and_overlay():
    label_map = np.zeros((4, 6), np.uint8)
    label_map[1:3, 2:5] = 1
    dec = SegmentationDecoder('ids', kind='argmax')
    [result] = dec.decode({'ids': label_map[None]}, [FrameGeometry.stretch(6, 4, 6, 4)])
    colors = result.colorize(voc_palette())
    assert colors.shape == (4, 6, 3) and colors[1, 2].tolist() == [128, 0, 0]
    image = np.full((4, 6, 3), 100, np.uint8)
    blended = overlay(image, result.label_map, voc_palette(), alpha=0.5)
    assert blended[0, 0].tolist() == [100, 100, 100]  # background untouched
    assert blended[1, 2].tolist() == [114, 50, 50]
    everything = overlay(image, result.label_map, voc_palette(), 0.5, background_index=None)
    assert everything[0, 0].tolist() == [50, 50, 50]
    with pytest.raises(ValueError, match='palette has 1 colors'):
        result.colorize(np.zeros((1, 3), np.uint8))


def test_draw_detections_paints_the_box_outline_only():
    image = np.zeros((60, 80, 3), np.uint8)
    dets = Detections(np.array([[10, 20, 50, 55]], np.float32), np.array([0.9], np.float32),
                      np.array([0]), ['thing'])
    drawn = draw_detections(image, dets, thickness=1)
    assert image.max() == 0  # input left alone
    assert drawn[40, 10].any() and drawn[40, 50].any()  # left and right edges
    assert not drawn[40, 30].any()  # inside the box
    assert drawn[5:20, 10:40].any()  # caption above the box
