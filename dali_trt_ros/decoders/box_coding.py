"""Center-size box coding between anchors and regression outputs.

The TF OD API ``faster_rcnn_box_coder`` and the original SSD's variance coding are the same
transform written two ways: scales (10, 10, 5, 5) equal variances (0.1, 0.1, 0.2, 0.2) inverted.

    cy = t_y / s_y * h_a + cy_a      h = exp(t_h / s_h) * h_a
    cx = t_x / s_x * w_a + cx_a      w = exp(t_w / s_w) * w_a

``order`` names how the four codes are laid out in the model output: ``yxhw`` (TF: ty, tx, th,
tw) or ``xywh`` (Caffe / ssd.pytorch: tx, ty, tw, th). Scales are given in that same order.
"""

import math

import numpy as np

from dali_trt_ros import validation as check
from dali_trt_ros.errors import ConfigError

# Caps exp() so garbage codes cannot overflow to inf (a box 1000/16 times its anchor is the
# same cap detectron and torchvision use).
MAX_LOG_SIZE_RATIO = math.log(1000.0 / 16.0)

ORDERS = {'yxhw': (0, 1, 2, 3), 'xywh': (1, 0, 3, 2)}  # output column -> (y, x, h, w) slot


class CenterSizeBoxCoder:
    """Decode (and encode) box regressions relative to (cy, cx, h, w) anchors."""

    def __init__(self, scales=(10.0, 10.0, 5.0, 5.0), order='yxhw'):
        if order not in ORDERS:
            raise ConfigError(f'decoder.box_coder.order must be yxhw or xywh, got {order!r}')
        if len(scales) != 4 or any(s <= 0 for s in scales):
            raise ConfigError(f'decoder.box_coder.scales must be 4 positive numbers, got {scales}')
        self.order = order
        self.scales = tuple(float(s) for s in scales)
        permutation = ORDERS[order]
        # Scales re-ordered to the internal (y, x, h, w) slots.
        self._yxhw_scales = np.empty(4)
        self._yxhw_scales[list(permutation)] = self.scales
        self._columns = np.argsort(permutation)  # internal slot -> output column

    @classmethod
    def from_config(cls, mapping, path='decoder.box_coder'):
        """Build from ``{scales: [..4..]} or {variances: [center, size]}`` plus ``order``."""
        mapping = {} if mapping is None else check.mapping(mapping, path)
        check.known_keys(mapping, {'scales', 'variances', 'order'}, path)
        if 'scales' in mapping and 'variances' in mapping:
            raise ConfigError(f'{path}: give either scales or variances, not both')
        order = check.choice(mapping.get('order', 'yxhw'), sorted(ORDERS), f'{path}.order')
        if 'variances' in mapping:
            variances = check.numbers(mapping['variances'], f'{path}.variances', low=1e-9)
            if len(variances) == 2:  # (center, size) as in Caffe SSD
                variances = [variances[0], variances[0], variances[1], variances[1]]
            elif len(variances) != 4:
                raise ConfigError(f'{path}.variances must have 2 or 4 entries')
            return cls([1.0 / v for v in variances], order)
        scales = check.numbers(mapping.get('scales', [10.0, 10.0, 5.0, 5.0]),
                               f'{path}.scales', low=1e-9, length=4)
        return cls(scales, order)

    def decode(self, codes, anchors):
        """Turn (..., N, 4) codes and (N, 4) anchors into (..., N, 4) normalized x1, y1, x2, y2."""
        codes = np.asarray(codes, dtype=np.float32)
        anchors = np.asarray(anchors, dtype=np.float32)
        scaled = codes[..., self._columns] / self._yxhw_scales.astype(np.float32)
        cy = scaled[..., 0] * anchors[:, 2] + anchors[:, 0]
        cx = scaled[..., 1] * anchors[:, 3] + anchors[:, 1]
        half_h = 0.5 * np.exp(np.minimum(scaled[..., 2], MAX_LOG_SIZE_RATIO)) * anchors[:, 2]
        half_w = 0.5 * np.exp(np.minimum(scaled[..., 3], MAX_LOG_SIZE_RATIO)) * anchors[:, 3]
        return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)

    def encode(self, boxes_xyxy, anchors):
        """Inverse of decode: normalized (N, 4) x1, y1, x2, y2 boxes to (N, 4) codes."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64)
        anchors = np.asarray(anchors, dtype=np.float64)
        height = boxes[..., 3] - boxes[..., 1]
        width = boxes[..., 2] - boxes[..., 0]
        if np.any(height <= 0) or np.any(width <= 0):
            raise ValueError('encode() needs boxes with positive width and height')
        yxhw = np.stack([
            ((boxes[..., 1] + boxes[..., 3]) / 2 - anchors[:, 0]) / anchors[:, 2],
            ((boxes[..., 0] + boxes[..., 2]) / 2 - anchors[:, 1]) / anchors[:, 3],
            np.log(height / anchors[:, 2]),
            np.log(width / anchors[:, 3]),
        ], axis=-1) * self._yxhw_scales
        return yxhw[..., list(ORDERS[self.order])]
