"""SSD decoding on constructed tensors: scores, NMS, geometry mapping and plugin layouts."""

import math

import numpy as np
import pytest

from dali_trt_ros.decoders import Detections, SsdDecoder, decoder_from_config
from dali_trt_ros.errors import BindingMismatchError, ConfigError
from dali_trt_ros.preprocess.geometry import FrameGeometry

# Five anchors: a 2x2 grid of 0.2 boxes (centers 0.25 / 0.75), then one 0.9 box at the center.
SMALL_ANCHORS = {
    'generator': 'tf_multiple_grid', 'num_layers': 2, 'min_scale': 0.2, 'max_scale': 0.9,
    'feature_map_sizes': [2, 1], 'aspect_ratios': [1.0], 'interpolated_scale_aspect_ratio': 0,
    'reduce_boxes_in_lowest_layer': False,
}
RAW_CONFIG = {
    'type': 'ssd', 'layout': 'raw', 'box_output': 'boxes', 'score_output': 'scores',
    'anchors': SMALL_ANCHORS, 'box_coder': {'scales': [10, 10, 5, 5], 'order': 'yxhw'},
    'score': {'activation': 'sigmoid', 'background_index': 0},
    'score_threshold': 0.5, 'nms_iou_threshold': 0.5, 'top_k': 10,
}
LABELS = ['background', 'apple', 'banana']
STRETCH = FrameGeometry.stretch(640, 480, 300, 300)
LETTERBOX = FrameGeometry.letterbox(640, 480, 300, 300)  # scale 0.46875, 37 px bars top/bottom
NEG = -20.0  # a logit that is certainly below any threshold


def raw_outputs(logits, codes=None, batch=1):
    logits = np.asarray(logits, dtype=np.float32)
    if codes is None:
        codes = np.zeros((logits.shape[0], 4), np.float32)
    return {'boxes': np.repeat(np.asarray(codes, np.float32)[None], batch, axis=0),
            'scores': np.repeat(logits[None], batch, axis=0)}


def logits_with(*hits, columns=3):
    """(5, columns) logits, NEG everywhere except the (anchor, column, logit) hits."""
    logits = np.full((5, columns), NEG, np.float32)
    for anchor, column, value in hits:
        logits[anchor, column] = value
    return logits


def decoder(**overrides):
    return SsdDecoder.from_config(dict(RAW_CONFIG, **overrides), LABELS)


def test_sigmoid_scores_boxes_and_background_column_ignored():
    logits = logits_with((0, 2, 2.0), (1, 0, 10.0), (4, 1, 0.0))
    [dets] = decoder().decode(raw_outputs(logits), [STRETCH])
    assert isinstance(dets, Detections) and len(dets) == 2
    np.testing.assert_allclose(dets.scores, [1 / (1 + math.exp(-2.0)), 0.5], rtol=1e-6)
    assert dets.class_ids.tolist() == [2, 1]
    assert dets.labels == ['banana', 'apple']
    # Anchor 0 spans 0.15..0.35 of the input; stretched back to 640x480.
    np.testing.assert_allclose(dets.boxes[0], [96, 72, 224, 168], atol=1e-3)
    np.testing.assert_allclose(dets.boxes[1], [32, 24, 608, 456], atol=1e-3)
    rows = dets.to_rows()
    assert rows[0]['label'] == 'banana' and rows[0]['x2'] == pytest.approx(224, abs=1e-3)


def test_background_index_null_scores_every_column():
    logits = logits_with((1, 0, 3.0))
    [dets] = decoder(score={'activation': 'sigmoid', 'background_index': None}).decode(
        raw_outputs(logits), [STRETCH])
    assert dets.labels == ['background']


def test_softmax_with_background_and_labels_without_background():
    logits = np.zeros((5, 3), np.float32)
    logits[0] = [0.0, math.log(4.0), 0.0]  # probabilities 1/6, 4/6, 1/6
    logits[1] = [5.0, 0.0, 0.0]  # background wins
    dec = SsdDecoder.from_config(dict(RAW_CONFIG, score={'activation': 'softmax'}),
                                 ['apple', 'banana'])
    [dets] = dec.decode(raw_outputs(logits), [STRETCH])
    assert len(dets) == 1
    assert dets.scores[0] == pytest.approx(4 / 6, rel=1e-6)
    assert dets.class_ids.tolist() == [0] and dets.labels == ['apple']


def test_label_count_mismatch_is_reported():
    dec = SsdDecoder.from_config(RAW_CONFIG, ['only_one'])
    with pytest.raises(BindingMismatchError, match='3 columns but 1 labels'):
        dec.decode(raw_outputs(logits_with((0, 1, 3.0))), [STRETCH])


def test_nms_inside_decode_is_class_wise():
    codes = np.zeros((5, 4), np.float32)
    codes[1, 1] = (0.25 - 0.75) / 0.2 * 10  # move anchor 1 onto anchor 0
    same_class = logits_with((0, 1, 2.0), (1, 1, 3.0))
    [dets] = decoder().decode(raw_outputs(same_class, codes), [STRETCH])
    assert len(dets) == 1 and dets.scores[0] == pytest.approx(1 / (1 + math.exp(-3.0)))
    np.testing.assert_allclose(dets.boxes[0], [96, 72, 224, 168], atol=1e-3)
    other_class = logits_with((0, 2, 2.0), (1, 1, 3.0))
    [dets] = decoder().decode(raw_outputs(other_class, codes), [STRETCH])
    assert dets.labels == ['apple', 'banana']


def test_letterbox_mapping_clipping_and_boxes_in_padding_dropped():
    codes = np.zeros((5, 4), np.float32)
    # Anchor 2 (cy 0.75, cx 0.25) moved to cy 0.06 with height 0.04: inside the top bar.
    codes[2, 0] = (0.06 - 0.75) / 0.2 * 10
    codes[2, 2] = 5 * math.log(0.04 / 0.2)
    logits = logits_with((0, 1, 4.0), (2, 1, 3.0), (4, 2, 1.0))
    [dets] = decoder().decode(raw_outputs(logits, codes), [LETTERBOX])
    assert dets.labels == ['apple', 'banana']  # the box in the padding is gone
    # Anchor 0: input pixels 45..105 -> x / 0.46875, y (y - 37) / 0.46875.
    np.testing.assert_allclose(dets.boxes[0], [96, 8 / 0.46875, 224, 68 / 0.46875], atol=1e-3)
    # Anchor 4: input 15..285 reaches into both bars; y clipped to the image.
    np.testing.assert_allclose(dets.boxes[1], [32, 0, 608, 480], atol=1e-3)


def test_empty_result_and_batch_padding():
    logits = logits_with()
    batch = raw_outputs(logits, batch=3)
    batch['scores'][1, 0, 1] = 5.0
    results = decoder().decode(batch, [STRETCH, LETTERBOX])  # third entry is padding
    assert len(results) == 2
    assert len(results[0]) == 0 and results[0].boxes.shape == (0, 4)
    assert results[0].to_rows() == []
    assert results[1].labels == ['apple']
    with pytest.raises(BindingMismatchError, match='batch of 3'):
        decoder().decode(batch, [STRETCH] * 4)


def test_thresholds_are_adjustable_at_run_time():
    dec = decoder()
    logits = logits_with((0, 1, 0.5), (3, 2, 2.0))  # sigmoid 0.62 and 0.88
    assert len(dec.decode(raw_outputs(logits), [STRETCH])[0]) == 2
    dec.score_threshold = 0.7
    assert dec.decode(raw_outputs(logits), [STRETCH])[0].labels == ['banana']
    dec.score_threshold = 0.0
    assert len(dec.decode(raw_outputs(logits), [STRETCH])[0]) == 10  # top_k caps 5 anchors x 2
    with pytest.raises(ConfigError, match='score_threshold'):
        dec.score_threshold = 1.5
    with pytest.raises(ConfigError, match='nms_iou_threshold'):
        dec.nms_iou_threshold = -0.1
    dec.nms_iou_threshold = 0.3
    assert dec.nms_iou_threshold == 0.3


def test_pre_nms_top_k_and_max_per_class():
    logits = logits_with((0, 1, 1.0), (1, 1, 2.0), (2, 1, 3.0), (3, 2, 4.0))
    [dets] = decoder(pre_nms_top_k=2).decode(raw_outputs(logits), [STRETCH])
    assert dets.scores.tolist() == pytest.approx([1 / (1 + math.exp(-4)), 1 / (1 + math.exp(-3))])
    [dets] = decoder(max_per_class=1).decode(raw_outputs(logits), [STRETCH])
    assert dets.labels == ['banana', 'apple']


def test_anchor_count_and_missing_output_errors():
    with pytest.raises(BindingMismatchError, match='generates 5'):
        decoder().decode({'boxes': np.zeros((1, 7, 4)), 'scores': np.zeros((1, 7, 3))}, [STRETCH])
    with pytest.raises(BindingMismatchError, match="'scores' is missing"):
        decoder().decode({'boxes': np.zeros((1, 5, 4))}, [STRETCH])


@pytest.mark.parametrize('change, key', [
    ({'score_threshold': 2}, 'decoder.score_threshold'),
    ({'layout': 'yolo'}, 'decoder.layout'),
    ({'anchors': None}, 'decoder.anchors'),
    ({'top_k': 0}, 'decoder.top_k'),
    ({'nms_iou': 0.5}, 'nms_iou'),
    ({'score': {'activation': 'relu'}}, 'decoder.score.activation'),
    ({'score': {'background_index': -1}}, 'decoder.score.background_index'),
    ({'box_coder': {'order': 'xyxy'}}, 'decoder.box_coder.order'),
    ({'box_output': ''}, 'decoder.box_output'),
])
def test_config_errors_name_the_key(change, key):
    with pytest.raises(ConfigError, match=key.replace('.', r'\.')):
        SsdDecoder.from_config(dict(RAW_CONFIG, **change), LABELS)


def test_factory_dispatches_on_type():
    assert isinstance(decoder_from_config(RAW_CONFIG, LABELS), SsdDecoder)
    with pytest.raises(ConfigError, match=r'decoder\.type'):
        decoder_from_config({'type': 'yolo'}, LABELS)


def efficient_nms_outputs():
    boxes = np.zeros((2, 4, 4), np.float32)
    boxes[0, 0] = [0.1, 0.2, 0.5, 0.6]
    boxes[0, 1] = [0.0, 0.0, 1.0, 1.0]
    boxes[0, 2:] = 7.0  # beyond num_detections: must be ignored
    scores = np.array([[0.9, 0.3, 0.99, 0.99], [0.99] * 4], np.float32)
    classes = np.array([[2, 1, 1, 1], [1] * 4], np.int32)
    return {'num_detections': np.array([[2], [0]], np.int32), 'detection_boxes': boxes,
            'detection_scores': scores, 'detection_classes': classes}


def test_efficient_nms_layout():
    dec = SsdDecoder.from_config({'type': 'ssd', 'layout': 'efficient_nms',
                                  'score_threshold': 0.25}, LABELS)
    first, second = dec.decode(efficient_nms_outputs(), [LETTERBOX, STRETCH])
    assert len(second) == 0
    assert first.labels == ['banana', 'apple']
    # (0.1, 0.2, 0.5, 0.6) of 300 px -> (30, 60, 150, 180) -> original via the letterbox.
    np.testing.assert_allclose(first.boxes[0], [64, 23 / 0.46875, 320, 143 / 0.46875], atol=1e-3)
    np.testing.assert_allclose(first.boxes[1], [0, 0, 640, 480], atol=1e-3)
    dec.score_threshold = 0.5
    assert dec.decode(efficient_nms_outputs(), [LETTERBOX])[0].labels == ['banana']


def test_efficient_nms_yxyx_pixel_boxes_and_custom_names():
    outputs = efficient_nms_outputs()
    renamed = {'n': outputs['num_detections'], 'b': outputs['detection_boxes'][..., [1, 0, 3, 2]]
               * 300, 's': outputs['detection_scores'], 'c': outputs['detection_classes'] - 1}
    dec = SsdDecoder.from_config({
        'type': 'ssd', 'layout': 'efficient_nms', 'count_output': 'n', 'box_output': 'b',
        'score_output': 's', 'class_output': 'c', 'box_order': 'yxyx', 'normalized_boxes': False,
        'class_offset': 1, 'score_threshold': 0.25}, LABELS)
    [dets] = dec.decode(renamed, [STRETCH])
    assert dets.labels == ['banana', 'apple']
    np.testing.assert_allclose(dets.boxes[0], [64, 96, 320, 288], atol=1e-3)


def test_legacy_nms_layout():
    rows = np.zeros((2, 1, 3, 7), np.float32)
    rows[0, 0, 0] = [0, 1, 0.4, 0.1, 0.2, 0.5, 0.6]
    rows[0, 0, 1] = [0, 2, 0.8, 0.0, 0.0, 0.5, 0.5]
    rows[0, 0, 2] = [-1, 0, 0.0, 0, 0, 0, 0]  # padding row
    rows[1, 0, 0] = [1, 2, 0.7, 0.5, 0.5, 1.0, 1.0]
    rows[1, 0, 1] = [1, 1, 0.9, 0.0, 0.0, 1.0, 1.0]  # beyond the keep count
    keep = np.array([3, 1], np.int32).reshape(2, 1, 1, 1)
    dec = SsdDecoder.from_config({'type': 'ssd', 'layout': 'legacy_nms',
                                  'score_threshold': 0.3}, LABELS)
    first, second = dec.decode({'NMS': rows, 'NMS_1': keep}, [STRETCH, STRETCH])
    assert first.labels == ['banana', 'apple']  # sorted by score
    np.testing.assert_allclose(first.boxes[0], [0, 0, 320, 240], atol=1e-3)
    assert second.labels == ['banana']
    np.testing.assert_allclose(second.boxes[0], [320, 240, 640, 480], atol=1e-3)
