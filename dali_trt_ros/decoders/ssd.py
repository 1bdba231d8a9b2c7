"""SSD detection decoding: raw head outputs or TensorRT NMS plugin outputs -> Detections.

Layouts (``decoder.layout``):

* ``raw``: per-anchor box codes (N, A, 4) and class scores (N, A, C); this module applies the
  score activation, the threshold, the box coder, class-wise NMS and top-k.
* ``efficient_nms``: outputs of TensorRT's EfficientNMS plugin: ``num_detections`` (N, 1),
  ``detection_boxes`` (N, K, 4), ``detection_scores`` (N, K), ``detection_classes`` (N, K).
* ``legacy_nms``: the older NMS_TRT / Caffe DetectionOutput layout: (N, 1, K, 7) rows of
  (image_id, label, confidence, xmin, ymin, xmax, ymax) plus a keep count (N, 1, 1, 1).

With ``use_device_candidates`` (raw layout), the model graph already activated the scores and
kept the K best (anchor, foreground class) pairs (``dali_trt_ros.models.variants``); this module
then thresholds those K and continues as for raw outputs, in the same candidate order, so the
result equals the host path whenever at most K candidates pass the threshold.

Plugin layouts were suppressed when the engine was built; here only the score threshold (it can
only be raised above the build-time one) and the original-pixel mapping apply.
"""

import math

import numpy as np

from dali_trt_ros import validation as check
from dali_trt_ros.decoders.anchors import anchors_from_config
from dali_trt_ros.decoders.box_coding import CenterSizeBoxCoder
from dali_trt_ros.decoders.device_outputs import CANDIDATE_INDICES, CANDIDATE_SCORES
from dali_trt_ros.decoders.nms import batched_nms, score_order
from dali_trt_ros.decoders.results import Detections
from dali_trt_ros.errors import BindingMismatchError, ConfigError

LAYOUTS = ('raw', 'efficient_nms', 'legacy_nms')
ACTIVATIONS = ('sigmoid', 'softmax', 'none')

DEFAULT_OUTPUTS = {
    'raw': {'box_output': 'raw_outputs/box_encodings',
            'score_output': 'raw_outputs/class_predictions'},
    'efficient_nms': {'count_output': 'num_detections', 'box_output': 'detection_boxes',
                      'score_output': 'detection_scores', 'class_output': 'detection_classes'},
    'legacy_nms': {'detection_output': 'NMS', 'count_output': 'NMS_1'},
}
COMMON_KEYS = {'type', 'layout', 'score_threshold', 'nms_iou_threshold', 'top_k',
               'max_per_class', 'min_box_size'}
LAYOUT_KEYS = {
    'raw': {'box_output', 'score_output', 'anchors', 'box_coder', 'score', 'pre_nms_top_k'},
    'efficient_nms': {'count_output', 'box_output', 'score_output', 'class_output', 'box_order',
                      'normalized_boxes', 'class_offset'},
    'legacy_nms': {'detection_output', 'count_output', 'normalized_boxes', 'class_offset'},
}


def sigmoid(x):
    """Logistic function, computed without overflow warnings for large negative logits."""
    x = np.asarray(x, dtype=np.float32)
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def softmax(x, axis=-1):
    """Softmax along ``axis`` (max-subtracted for stability)."""
    x = np.asarray(x, dtype=np.float32)
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def logit(probability):
    """Inverse sigmoid; 0 -> -inf and 1 -> +inf, so thresholds can be compared on logits."""
    if probability <= 0.0:
        return -math.inf
    if probability >= 1.0:
        return math.inf
    return math.log(probability / (1.0 - probability))


class SsdDecoder:
    """Turn SSD outputs of a batch into one Detections per frame in original pixels."""

    def __init__(self, labels=None, layout='raw', anchors=None, box_coder=None, outputs=None,
                 activation='sigmoid', background_index=0, score_threshold=0.5,
                 nms_iou_threshold=0.6, top_k=100, max_per_class=None, pre_nms_top_k=None,
                 box_order='xyxy', normalized_boxes=True, class_offset=0, min_box_size=0.0):
        self.layout = check.choice(layout, LAYOUTS, 'decoder.layout')
        self.labels = [str(label) for label in (labels or [])]
        self.outputs = dict(DEFAULT_OUTPUTS[self.layout], **(outputs or {}))
        if self.layout == 'raw' and anchors is None:
            raise ConfigError('decoder.anchors is required for layout raw')
        self.anchors = None if anchors is None else np.asarray(anchors, dtype=np.float32)
        self.box_coder = box_coder or CenterSizeBoxCoder()
        self.activation = check.choice(activation, ACTIVATIONS, 'decoder.score.activation')
        self.background_index = background_index
        self.score_threshold = score_threshold
        self.nms_iou_threshold = nms_iou_threshold
        self.top_k = check.optional(check.integer, top_k, 'decoder.top_k', low=1)
        self.max_per_class = check.optional(check.integer, max_per_class,
                                            'decoder.max_per_class', low=1)
        self.pre_nms_top_k = check.optional(check.integer, pre_nms_top_k,
                                            'decoder.pre_nms_top_k', low=1)
        self.box_order = check.choice(box_order, ('xyxy', 'yxyx'), 'decoder.box_order')
        self.normalized_boxes = bool(normalized_boxes)
        self.class_offset = check.integer(class_offset, 'decoder.class_offset')
        self.min_box_size = check.number(min_box_size, 'decoder.min_box_size', low=0.0)
        self.device_candidates = None  # K when the graph selects candidates (raw layout only)
        self._score_columns = None     # the raw head's score columns, with device candidates

    # Thresholds are plain attributes for the ROS node to change at run time, validated on set.
    @property
    def score_threshold(self):
        """Minimum score a detection needs (0..1)."""
        return self._score_threshold

    @score_threshold.setter
    def score_threshold(self, value):
        self._score_threshold = check.probability(value, 'decoder.score_threshold')
        self._logit_threshold = logit(self._score_threshold)

    @property
    def nms_iou_threshold(self):
        """Overlap (IoU) above which a lower-scored box of its class is suppressed (0..1)."""
        return self._nms_iou_threshold

    @nms_iou_threshold.setter
    def nms_iou_threshold(self, value):
        self._nms_iou_threshold = check.probability(value, 'decoder.nms_iou_threshold')

    @classmethod
    def from_config(cls, mapping, labels=None, path='decoder'):
        """Build from the YAML ``decoder:`` mapping; ConfigError names the offending key."""
        check.mapping(mapping, path)
        if mapping.get('type', 'ssd') != 'ssd':
            raise ConfigError(f'{path}.type is {mapping.get("type")!r}; SsdDecoder needs ssd')
        layout = check.choice(mapping.get('layout', 'raw'), LAYOUTS, f'{path}.layout')
        check.known_keys(mapping, COMMON_KEYS | LAYOUT_KEYS[layout], path)
        outputs = {key: check.text(mapping[key], f'{path}.{key}')
                   for key in DEFAULT_OUTPUTS[layout] if key in mapping}
        kwargs = dict(
            labels=labels, layout=layout, outputs=outputs,
            score_threshold=check.probability(mapping.get('score_threshold', 0.5),
                                              f'{path}.score_threshold'),
            nms_iou_threshold=check.probability(mapping.get('nms_iou_threshold', 0.6),
                                                f'{path}.nms_iou_threshold'),
            top_k=check.optional(check.integer, mapping.get('top_k', 100), f'{path}.top_k',
                                 low=1),
            max_per_class=check.optional(check.integer, mapping.get('max_per_class'),
                                         f'{path}.max_per_class', low=1),
            min_box_size=check.number(mapping.get('min_box_size', 0.0), f'{path}.min_box_size',
                                      low=0.0))
        if layout == 'raw':
            kwargs.update(_raw_options(mapping, path))
        else:
            kwargs['normalized_boxes'] = check.boolean(mapping.get('normalized_boxes', True),
                                                       f'{path}.normalized_boxes')
            kwargs['class_offset'] = check.integer(mapping.get('class_offset', 0),
                                                   f'{path}.class_offset')
            if layout == 'efficient_nms':
                kwargs['box_order'] = check.choice(mapping.get('box_order', 'xyxy'),
                                                   ('xyxy', 'yxyx'), f'{path}.box_order')
        return cls(**kwargs)

    @property
    def output_names(self):
        """Names of the model outputs this decoder reads."""
        if self.device_candidates:
            return [self.outputs['box_output'], CANDIDATE_SCORES, CANDIDATE_INDICES]
        return list(self.outputs.values())

    def use_device_candidates(self, count, score_columns):
        """Read the ``count`` best activated scores the model graph selected (raw layout).

        ``score_columns`` is the width of the raw head's score output (background included).
        """
        if self.layout != 'raw':
            raise ConfigError(f'device candidates need decoder.layout raw, not {self.layout!r}')
        self._background_column(score_columns)
        self.device_candidates = int(count)
        self._score_columns = int(score_columns)

    def device_feeds(self, geometry):
        """Extra model inputs per geometry: none (the threshold is applied on the host)."""
        return {}

    def decode(self, outputs, geometries):
        """Decode a batch: ``outputs`` maps output names to arrays (batch first).

        ``geometries`` holds one FrameGeometry per frame; a static-batch engine may return more
        batch entries than frames, the extra (padding) entries are ignored.
        """
        names = dict(self.outputs)
        if self.device_candidates:
            del names['score_output']
            names.update(candidate_scores=CANDIDATE_SCORES, candidate_indices=CANDIDATE_INDICES)
        arrays = {key: _fetch(outputs, name) for key, name in names.items()}
        batch = min(array.shape[0] for array in arrays.values())
        if len(geometries) > batch:
            raise BindingMismatchError(f'{len(geometries)} frames but the model outputs hold a '
                                       f'batch of {batch}; check the engine batch size')
        per_frame = {'raw': self._decode_raw, 'efficient_nms': self._decode_efficient_nms,
                     'legacy_nms': self._decode_legacy_nms}[self.layout]
        return [per_frame(arrays, index, geometry) for index, geometry in enumerate(geometries)]

    # --- raw head outputs -------------------------------------------------------------------

    def _decode_raw(self, arrays, index, geometry):
        """Threshold, decode, NMS and map one frame of raw head outputs."""
        boxes, scores, columns, num_columns = self._raw_candidates(arrays, index)
        keep = batched_nms(boxes, scores, columns, self._nms_iou_threshold,
                           max_per_class=self.max_per_class, max_total=self.top_k)
        class_ids = self._class_ids_from_columns(columns[keep], num_columns)
        return self._finish(geometry.normalized_boxes_to_original(boxes[keep]), scores[keep],
                            class_ids)

    def _raw_candidates(self, arrays, index):
        """NMS input of one frame: normalized boxes, scores and score columns above threshold."""
        codes = arrays['box_output'][index].reshape(-1, 4)
        num_anchors = self.anchors.shape[0]
        if codes.shape[0] != num_anchors:
            raise BindingMismatchError(
                f'box output {self.outputs["box_output"]!r} has {codes.shape[0]} boxes but the '
                f'anchor configuration generates {num_anchors}; fix decoder.anchors')
        if self.device_candidates:
            anchor_idx, columns, scores = self._device_candidates(arrays, index)
            num_columns = self._score_columns
        else:
            raw_scores = arrays['score_output'][index].reshape(num_anchors, -1)
            anchor_idx, columns, scores = self._candidates(raw_scores)
            num_columns = raw_scores.shape[1]
        if self.pre_nms_top_k is not None and scores.size > self.pre_nms_top_k:
            best = score_order(scores)[:self.pre_nms_top_k]
            anchor_idx, columns, scores = anchor_idx[best], columns[best], scores[best]
        boxes = self.box_coder.decode(codes[anchor_idx], self.anchors[anchor_idx])
        return boxes, scores, columns, num_columns

    def _candidates(self, raw_scores):
        """(anchor, column, score) triples of foreground scores at or above the threshold."""
        background = self._background_column(raw_scores.shape[1])
        if self.activation == 'sigmoid':
            # Comparing logits avoids computing exp() for the ~all anchors below threshold.
            hits = raw_scores >= self._logit_threshold
            if background is not None:
                hits[:, background] = False
            anchor_idx, columns = np.nonzero(hits)
            return anchor_idx, columns, sigmoid(raw_scores[anchor_idx, columns])
        probs = softmax(raw_scores, axis=1) if self.activation == 'softmax' else raw_scores
        hits = probs >= self._score_threshold
        if background is not None:
            hits[:, background] = False
        anchor_idx, columns = np.nonzero(hits)
        return anchor_idx, columns, probs[anchor_idx, columns].astype(np.float32)

    def _device_candidates(self, arrays, index):
        """(anchor, column, score) of the graph's candidates that pass the threshold.

        Returned in anchor-major order, the order ``_candidates`` gives on the host, so NMS
        breaks ties the same way.
        """
        scores = np.asarray(arrays['candidate_scores'][index], np.float32).reshape(-1)
        flat = np.asarray(arrays['candidate_indices'][index]).reshape(-1)
        passed = scores >= self._score_threshold
        flat, scores = flat[passed], scores[passed]
        order = np.argsort(flat, kind='stable')
        flat, scores = flat[order], scores[order]
        num_columns = self._score_columns
        background = self._background_column(num_columns)
        foreground = np.array([c for c in range(num_columns) if c != background], np.int64)
        return flat // foreground.size, foreground[flat % foreground.size], scores

    def _background_column(self, num_columns):
        """Return the background column index, validated against the score output width."""
        if self.background_index is None:
            return None
        if not 0 <= self.background_index < num_columns:
            raise BindingMismatchError(
                f'decoder.score.background_index is {self.background_index} but the score output '
                f'has {num_columns} columns; set it to a valid column or null')
        return self.background_index

    def _class_ids_from_columns(self, columns, num_columns):
        """Map score columns to indices into the label list (which may omit the background)."""
        if not self.labels or len(self.labels) >= num_columns:
            return columns.astype(np.int64)
        if self.background_index is not None and len(self.labels) == num_columns - 1:
            return (columns - (columns > self.background_index)).astype(np.int64)
        raise BindingMismatchError(
            f'the score output has {num_columns} columns but {len(self.labels)} labels are '
            f'configured; give {num_columns} labels (or {num_columns - 1} without background)')

    # --- TensorRT NMS plugin outputs --------------------------------------------------------

    def _decode_efficient_nms(self, arrays, index, geometry):
        """Map one frame of EfficientNMS outputs."""
        count = int(np.asarray(arrays['count_output'][index]).reshape(-1)[0])
        boxes = arrays['box_output'][index].reshape(-1, 4)[:count].astype(np.float64)
        scores = arrays['score_output'][index].reshape(-1)[:count].astype(np.float32)
        classes = arrays['class_output'][index].reshape(-1)[:count]
        if self.box_order == 'yxyx':
            boxes = boxes[:, [1, 0, 3, 2]]
        return self._finish_plugin(boxes, scores, classes, geometry)

    def _decode_legacy_nms(self, arrays, index, geometry):
        """Map one frame of the legacy NMS plugin's [1, K, 7] rows and keep count."""
        rows = arrays['detection_output'][index].reshape(-1, 7)
        count = int(np.asarray(arrays['count_output'][index]).reshape(-1)[0])
        rows = rows[:count]
        rows = rows[rows[:, 0] >= 0]  # image_id -1 marks padding rows
        return self._finish_plugin(rows[:, 3:7].astype(np.float64), rows[:, 2].astype(np.float32),
                                   rows[:, 1], geometry)

    def _finish_plugin(self, boxes, scores, classes, geometry):
        """Apply the run-time threshold and map plugin boxes to original pixels."""
        selected = scores >= self._score_threshold
        boxes, scores = boxes[selected], scores[selected]
        class_ids = np.rint(classes[selected]).astype(np.int64) + self.class_offset
        order = score_order(scores)
        if self.top_k is not None:
            order = order[:self.top_k]
        boxes, scores, class_ids = boxes[order], scores[order], class_ids[order]
        if self.normalized_boxes:
            mapped = geometry.normalized_boxes_to_original(boxes)
        else:
            mapped = geometry.boxes_to_original(boxes)
        return self._finish(mapped, scores, class_ids)

    # --- shared -----------------------------------------------------------------------------

    def _finish(self, boxes, scores, class_ids):
        """Drop boxes that clipping left (nearly) empty and attach label names."""
        size = self.min_box_size
        valid = ((boxes[:, 2] - boxes[:, 0]) > size) & ((boxes[:, 3] - boxes[:, 1]) > size)
        boxes, scores, class_ids = boxes[valid], scores[valid], class_ids[valid]
        return Detections(boxes.astype(np.float32), scores.astype(np.float32),
                          class_ids.astype(np.int64), [self.label(c) for c in class_ids])

    def label(self, class_id):
        """Name of a class id, or ``class_<id>`` when the label list does not cover it."""
        if 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return f'class_{int(class_id)}'


def _raw_options(mapping, path):
    """Collect the constructor arguments specific to the raw layout."""
    score = mapping.get('score') or {}
    check.mapping(score, f'{path}.score')
    check.known_keys(score, {'activation', 'background_index'}, f'{path}.score')
    background = score.get('background_index', 0)
    if background is not None:
        background = check.integer(background, f'{path}.score.background_index', low=0)
    return dict(
        anchors=anchors_from_config(check.required(mapping, 'anchors', path), f'{path}.anchors'),
        box_coder=CenterSizeBoxCoder.from_config(mapping.get('box_coder'), f'{path}.box_coder'),
        activation=check.choice(score.get('activation', 'sigmoid'), ACTIVATIONS,
                                f'{path}.score.activation'),
        background_index=background,
        pre_nms_top_k=check.optional(check.integer, mapping.get('pre_nms_top_k'),
                                     f'{path}.pre_nms_top_k', low=1))


def _fetch(outputs, name):
    """Look up one output array by name with an error that lists what the model produced."""
    try:
        return np.asarray(outputs[name])
    except KeyError:
        raise BindingMismatchError(
            f'model output {name!r} is missing; the model produced {sorted(outputs)}. '
            'Fix the output names in the decoder configuration') from None
