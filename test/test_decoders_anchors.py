"""Anchor generation and box coding, checked against values worked out by hand."""

import math

import numpy as np
import pytest

from dali_trt_ros.decoders.anchors import anchors_from_config, ssd_prior_boxes, tf_box_specs
from dali_trt_ros.decoders.box_coding import CenterSizeBoxCoder
from dali_trt_ros.errors import ConfigError

# The real SSD-MobileNetV2 (OpenImages v4) anchor configuration.
TF_SSD_ANCHORS = {
    'generator': 'tf_multiple_grid', 'num_layers': 6, 'min_scale': 0.2, 'max_scale': 0.95,
    'feature_map_sizes': [19, 10, 5, 3, 2, 1], 'aspect_ratios': [1.0, 2.0, 0.5, 3.0, 1 / 3],
    'interpolated_scale_aspect_ratio': 1.0, 'reduce_boxes_in_lowest_layer': True,
    'anchor_offset': 0.5,
}

# ssd.pytorch's SSD300 (VOC) prior boxes.
SSD300_PRIORS = {
    'generator': 'ssd_prior_box', 'image_size': 300,
    'feature_map_sizes': [38, 19, 10, 5, 3, 1], 'steps': [8, 16, 32, 64, 100, 300],
    'min_sizes': [30, 60, 111, 162, 213, 264], 'max_sizes': [60, 111, 162, 213, 264, 315],
    'aspect_ratios': [[2], [2, 3], [2, 3], [2, 3], [2], [2]], 'clip': 'center_size',
}


def anchor(cy, cx, h, w):
    return np.array([cy, cx, h, w])


@pytest.fixture(scope='module')
def tf_anchors():
    return anchors_from_config(TF_SSD_ANCHORS)


def test_tf_anchor_count_is_1917(tf_anchors):
    assert tf_anchors.shape == (19 * 19 * 3 + (10 * 10 + 5 * 5 + 3 * 3 + 2 * 2 + 1) * 6, 4)
    assert tf_anchors.shape[0] == 1917


def test_tf_lowest_layer_first_cell(tf_anchors):
    c = 0.5 / 19
    r2 = math.sqrt(2.0)
    np.testing.assert_allclose(tf_anchors[0], anchor(c, c, 0.1, 0.1))
    np.testing.assert_allclose(tf_anchors[1], anchor(c, c, 0.2 / r2, 0.2 * r2))
    np.testing.assert_allclose(tf_anchors[2], anchor(c, c, 0.2 * r2, 0.2 / r2))
    # Next anchor is the next cell along x (x varies faster than y).
    np.testing.assert_allclose(tf_anchors[3], anchor(c, 1.5 / 19, 0.1, 0.1))
    # Last anchor of layer 0: cell (18, 18), spec (0.2, 0.5).
    np.testing.assert_allclose(tf_anchors[1082], anchor(18.5 / 19, 18.5 / 19, 0.2 * r2, 0.2 / r2))


def test_tf_second_layer_cells_and_specs(tf_anchors):
    s1, s2 = 0.2 + 0.75 / 5, 0.2 + 0.75 * 2 / 5  # 0.35, 0.5
    start = 1083
    expected_specs = [(s1, 1.0), (s1, 2.0), (s1, 0.5), (s1, 3.0), (s1, 1 / 3),
                      (math.sqrt(s1 * s2), 1.0)]
    for k, (scale, ratio) in enumerate(expected_specs):
        np.testing.assert_allclose(
            tf_anchors[start + k],
            anchor(0.05, 0.05, scale / math.sqrt(ratio), scale * math.sqrt(ratio)))
    np.testing.assert_allclose(tf_anchors[start + 6], anchor(0.05, 0.15, s1, s1))  # cell (0, 1)
    np.testing.assert_allclose(tf_anchors[start + 60], anchor(0.15, 0.05, s1, s1))  # cell (1, 0)


def test_tf_last_layer_interpolates_towards_one(tf_anchors):
    np.testing.assert_allclose(tf_anchors[1911], anchor(0.5, 0.5, 0.95, 0.95))
    last = math.sqrt(0.95 * 1.0)
    np.testing.assert_allclose(tf_anchors[1916], anchor(0.5, 0.5, last, last))
    # TF does not clip anchors: the large last-layer boxes reach outside the unit square.
    assert tf_anchors[1914, 3] > 1.0  # ratio 3 at scale 0.95 is 1.645 wide


def test_tf_box_specs_without_reduction_and_interpolation():
    specs = tf_box_specs(2, 0.2, 0.9, aspect_ratios=[1.0, 2.0], interpolated_scale_aspect_ratio=0,
                         reduce_boxes_in_lowest_layer=False)
    np.testing.assert_allclose(specs, [[(0.2, 1.0), (0.2, 2.0)], [(0.9, 1.0), (0.9, 2.0)]])


def test_tf_non_square_input_keeps_ratio_one_square_in_pixels():
    anchors = anchors_from_config(dict(TF_SSD_ANCHORS, image_size=[300, 600]))
    h_pixels, w_pixels = anchors[0, 2] * 300, anchors[0, 3] * 600
    assert h_pixels == pytest.approx(w_pixels)


def test_strides_derive_feature_maps_like_mediapipe():
    by_stride = dict(TF_SSD_ANCHORS, strides=[16, 32, 64, 128, 256, 512], image_size=300)
    del by_stride['feature_map_sizes']
    derived = anchors_from_config(by_stride)
    # ceil(300 / stride) = 19, 10, 5, 3, 2, 1; base-size normalization is a no-op when square.
    np.testing.assert_allclose(derived, anchors_from_config(TF_SSD_ANCHORS))


def test_ssd300_prior_boxes_count_and_first_cell():
    priors = anchors_from_config(SSD300_PRIORS)
    assert priors.shape == (8732, 4)
    c = 0.5 * 8 / 300
    r2 = math.sqrt(2.0)
    np.testing.assert_allclose(priors[0], anchor(c, c, 0.1, 0.1))
    np.testing.assert_allclose(priors[1], anchor(c, c, math.sqrt(0.1 * 0.2), math.sqrt(0.1 * 0.2)))
    np.testing.assert_allclose(priors[2], anchor(c, c, 0.1 / r2, 0.1 * r2))
    np.testing.assert_allclose(priors[3], anchor(c, c, 0.1 * r2, 0.1 / r2))
    np.testing.assert_allclose(priors[4][:2], [c, 1.5 * 8 / 300])  # next cell along x
    # Layer 1 starts after 38*38*4 boxes, 6 boxes per cell, centers by step 16.
    np.testing.assert_allclose(priors[38 * 38 * 4][:2], [8 / 300, 8 / 300])
    # Step 100 on a 3x3 map: centers at 50, 150, 250 px (not 300 / 3 spacing by accident).
    layer4 = 38 * 38 * 4 + 19 * 19 * 6 + 10 * 10 * 6 + 5 * 5 * 6
    np.testing.assert_allclose(priors[layer4 + 4][:2], [50 / 300, 150 / 300])


def test_prior_box_corner_clipping():
    priors = ssd_prior_boxes((300, 300), [(38, 38)], [(8, 8)], [30], clip='corners')
    # The first box spans -0.0367..0.0633; clipped to 0..0.0633.
    np.testing.assert_allclose(priors[0], anchor(0.0633333 / 2, 0.0633333 / 2, 0.0633333,
                                                 0.0633333), atol=1e-6)
    unclipped = ssd_prior_boxes((300, 300), [(38, 38)], [(8, 8)], [30], clip='none')
    np.testing.assert_allclose(unclipped[0], anchor(4 / 300, 4 / 300, 0.1, 0.1))


@pytest.mark.parametrize('bad, key', [
    ({'generator': 'yolo'}, 'decoder.anchors.generator'),
    ({k: v for k, v in TF_SSD_ANCHORS.items() if k != 'feature_map_sizes'},
     'decoder.anchors.feature_map_sizes'),
    (dict(TF_SSD_ANCHORS, num_layers=5), 'decoder.anchors.num_layers'),
    (dict(TF_SSD_ANCHORS, min_scal=0.1), 'min_scal'),
    (dict(TF_SSD_ANCHORS, aspect_ratios='1,2'), 'decoder.anchors.aspect_ratios'),
    ({k: v for k, v in SSD300_PRIORS.items() if k != 'steps'}, 'decoder.anchors.steps'),
    (dict(SSD300_PRIORS, min_sizes=[30]), 'min_sizes'),
    (dict(SSD300_PRIORS, clip='maybe'), 'anchors.clip'),
])
def test_anchor_config_errors_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=key.replace('.', r'\.')):
        anchors_from_config(bad)


def test_box_coder_decodes_tf_formula_by_hand():
    coder = CenterSizeBoxCoder([10, 10, 5, 5], 'yxhw')
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]])
    codes = np.array([[1.0, -2.0, 5 * math.log(2.0), 0.0]])  # ty, tx, th, tw
    # cy = 0.1*0.2 + 0.5 = 0.52, cx = -0.2*0.4 + 0.5 = 0.42, h = 0.4, w = 0.4
    np.testing.assert_allclose(coder.decode(codes, anchors), [[0.22, 0.32, 0.62, 0.72]],
                               atol=1e-6)
    xywh = CenterSizeBoxCoder.from_config({'variances': [0.1, 0.2], 'order': 'xywh'})
    np.testing.assert_allclose(xywh.decode(codes[:, [1, 0, 3, 2]], anchors),
                               [[0.22, 0.32, 0.62, 0.72]], atol=1e-6)


@pytest.mark.parametrize('order, scales', [('yxhw', [10, 10, 5, 5]), ('xywh', [8, 9, 4, 3])])
def test_box_coder_round_trip(order, scales):
    rng = np.random.default_rng(1)
    anchors = np.column_stack([rng.uniform(0.1, 0.9, (200, 2)), rng.uniform(0.05, 0.6, (200, 2))])
    centers = rng.uniform(0, 1, (200, 2))
    sizes = rng.uniform(0.02, 0.8, (200, 2))
    boxes = np.column_stack([centers - sizes / 2, centers + sizes / 2])  # x1, y1, x2, y2
    coder = CenterSizeBoxCoder(scales, order)
    np.testing.assert_allclose(coder.decode(coder.encode(boxes, anchors), anchors), boxes,
                               atol=2e-6)


def test_box_coder_batch_dims_and_overflow_cap():
    coder = CenterSizeBoxCoder()
    anchors = np.array([[0.5, 0.5, 0.1, 0.1]] * 3)
    codes = np.zeros((2, 3, 4), np.float32)
    codes[1, 2, 2:] = 1e6  # garbage size codes must not give inf
    out = coder.decode(codes, anchors)
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out[0, 0], [0.45, 0.45, 0.55, 0.55], atol=1e-6)
    assert np.all(np.isfinite(out))


def test_box_coder_config_errors():
    with pytest.raises(ConfigError, match='scales or variances'):
        CenterSizeBoxCoder.from_config({'scales': [10, 10, 5, 5], 'variances': [0.1, 0.2]})
    with pytest.raises(ConfigError, match=r'box_coder\.order'):
        CenterSizeBoxCoder.from_config({'order': 'xyxy'})
    with pytest.raises(ConfigError, match=r'box_coder\.scales'):
        CenterSizeBoxCoder.from_config({'scales': [10, 10, 5]})
