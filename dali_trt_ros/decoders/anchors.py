"""Anchor (default/prior box) generation for SSD-style detectors.

All anchors are returned as an (N, 4) float64 array of ``(cy, cx, h, w)`` normalized to the model
input (0..1). The order of rows must match the order of the model's box and class outputs:

* TF Object Detection API multiple-grid generator: layer by layer; inside a layer, grid cell by
  cell (row-major: y outer, x inner); inside a cell, the layer's box specs in their listed order.
* Original SSD prior boxes (Caffe ``PriorBox`` / ssd.pytorch): layer by layer, cell by cell
  (row-major), and inside a cell: the ``min_size`` box, the ``sqrt(min_size * max_size)`` box, then
  for each aspect ratio ``ar`` the ``ar`` box followed by its ``1 / ar`` flip.
"""

import math

import numpy as np

from dali_trt_ros import validation as check
from dali_trt_ros.errors import ConfigError


def _pairs(values, path, whole=False, low=None):
    """Turn a list of numbers or [h, w] pairs into a list of (h, w) tuples."""
    if not isinstance(values, (list, tuple)) or not values:
        raise check.invalid(path, 'a non-empty list', values)
    pairs = []
    for i, value in enumerate(values):
        item_path = check.child(path, i)
        if isinstance(value, (list, tuple)):
            h, w = check.numbers(value, item_path, length=2, whole=whole, low=low)
        else:
            h = w = (check.integer if whole else check.number)(value, item_path, low=low)
        pairs.append((h, w))
    return pairs


def tf_box_specs(num_layers, min_scale=0.2, max_scale=0.95, scales=None,
                 aspect_ratios=(1.0, 2.0, 0.5, 3.0, 1.0 / 3.0),
                 interpolated_scale_aspect_ratio=1.0, reduce_boxes_in_lowest_layer=True):
    """Per-layer lists of (scale, aspect_ratio) as the TF OD API ``create_ssd_anchors`` defines.

    Scales are linear from ``min_scale`` to ``max_scale`` over the layers unless given; a layer's
    extra "interpolated" anchor has scale sqrt(s_i * s_{i+1}) with s_{num_layers} = 1.0. The lowest
    layer may be reduced to the fixed specs (0.1, 1.0), (s_0, 2.0), (s_0, 0.5).
    """
    if scales:
        layer_scales = [float(s) for s in scales]
        if len(layer_scales) != num_layers:
            raise ConfigError(f'anchors.scales has {len(layer_scales)} entries but there are '
                              f'{num_layers} layers; give one scale per layer')
    elif num_layers < 2:
        raise ConfigError('anchors: min_scale/max_scale interpolation needs num_layers >= 2; '
                          'give explicit anchors.scales for a single layer')
    else:
        layer_scales = [min_scale + (max_scale - min_scale) * i / (num_layers - 1)
                        for i in range(num_layers)]
    next_scales = layer_scales[1:] + [1.0]
    specs = []
    for layer, (scale, scale_next) in enumerate(zip(layer_scales, next_scales)):
        if layer == 0 and reduce_boxes_in_lowest_layer:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        layer_specs = [(scale, float(ratio)) for ratio in aspect_ratios]
        if interpolated_scale_aspect_ratio > 0.0:
            layer_specs.append((math.sqrt(scale * scale_next),
                                float(interpolated_scale_aspect_ratio)))
        specs.append(layer_specs)
    return specs


def tile_grid(grid_height, grid_width, heights, widths, offset_y=0.5, offset_x=0.5):
    """Place boxes of the given normalized sizes over every cell of one grid.

    Returns (grid_height * grid_width * len(heights), 4) rows of (cy, cx, h, w); cells are
    row-major and the boxes of one cell are contiguous, in the given order.
    """
    heights = np.asarray(heights, dtype=np.float64)
    widths = np.asarray(widths, dtype=np.float64)
    cy = (np.arange(grid_height, dtype=np.float64) + offset_y) / grid_height
    cx = (np.arange(grid_width, dtype=np.float64) + offset_x) / grid_width
    num_boxes = heights.size
    out = np.empty((grid_height, grid_width, num_boxes, 4), dtype=np.float64)
    out[..., 0] = cy[:, None, None]
    out[..., 1] = cx[None, :, None]
    out[..., 2] = heights[None, None, :]
    out[..., 3] = widths[None, None, :]
    return out.reshape(-1, 4)


def tf_multiple_grid_anchors(feature_map_sizes, box_specs, anchor_offset=0.5,
                             base_anchor_size=(1.0, 1.0), image_size=None):
    """Anchors of the TF OD API MultipleGridAnchorGenerator (no clipping, as TF generates them).

    ``feature_map_sizes``: per layer (height, width); ``box_specs``: per layer (scale, ratio)
    lists (see tf_box_specs). Box height = scale / sqrt(ratio) * base_h, width = scale *
    sqrt(ratio) * base_w. For a non-square ``image_size`` (height, width) the base size is
    scaled by min(h, w) / h and min(h, w) / w so that ratio-1 anchors stay square in pixels.
    """
    if len(feature_map_sizes) != len(box_specs):
        raise ConfigError(f'anchors: {len(feature_map_sizes)} feature maps but '
                          f'{len(box_specs)} layers of box specs; they must match')
    base_h, base_w = base_anchor_size
    if image_size is not None:
        im_h, im_w = image_size
        shortest = min(im_h, im_w)
        base_h, base_w = base_h * shortest / im_h, base_w * shortest / im_w
    layers = []
    for (grid_h, grid_w), specs in zip(feature_map_sizes, box_specs):
        scales = np.array([s for s, _ in specs], dtype=np.float64)
        ratio_sqrts = np.sqrt(np.array([r for _, r in specs], dtype=np.float64))
        layers.append(tile_grid(int(grid_h), int(grid_w), scales / ratio_sqrts * base_h,
                                scales * ratio_sqrts * base_w, anchor_offset, anchor_offset))
    return np.concatenate(layers, axis=0)


def ssd_prior_boxes(image_size, feature_map_sizes, steps, min_sizes, max_sizes=None,
                    aspect_ratios=None, flip=True, clip='corners', offset=0.5):
    """Prior boxes of the original SSD (Caffe PriorBox, ssd.pytorch PriorBox).

    Sizes and steps are in input pixels; ``image_size`` is (height, width). Per cell: a box of
    ``min_size``, a box of ``sqrt(min_size * max_size)`` (if max sizes are given), then for each
    aspect ratio a ``min_size * sqrt(ar)`` wide box and (with ``flip``) its transposed twin.
    ``clip``: 'corners' clips box corners to the image (Caffe), 'center_size' clamps cx, cy, w, h
    to [0, 1] (ssd.pytorch), 'none' leaves them.
    """
    im_h, im_w = image_size
    num_layers = len(feature_map_sizes)
    aspect_ratios = aspect_ratios or [[] for _ in range(num_layers)]
    for name, values in (('steps', steps), ('min_sizes', min_sizes),
                         ('aspect_ratios', aspect_ratios)):
        if len(values) != num_layers:
            raise ConfigError(f'anchors.{name} has {len(values)} entries; '
                              f'it needs one per feature map ({num_layers})')
    if max_sizes is not None and len(max_sizes) != num_layers:
        raise ConfigError(f'anchors.max_sizes has {len(max_sizes)} entries; '
                          f'it needs one per feature map ({num_layers})')
    layers = []
    for layer, (grid_h, grid_w) in enumerate(feature_map_sizes):
        step_h, step_w = steps[layer]
        min_size = float(min_sizes[layer])
        sizes = [(min_size, min_size)]
        if max_sizes is not None:
            side = math.sqrt(min_size * float(max_sizes[layer]))
            sizes.append((side, side))
        for ratio in aspect_ratios[layer]:
            root = math.sqrt(float(ratio))
            sizes.append((min_size / root, min_size * root))  # (height, width)
            if flip:
                sizes.append((min_size * root, min_size / root))
        heights = np.array([h for h, _ in sizes]) / im_h
        widths = np.array([w for _, w in sizes]) / im_w
        # Centers follow the step, not the grid size (ssd.pytorch: 300 / 8 = 37.5 cells).
        cells = tile_grid(int(grid_h), int(grid_w), heights, widths)
        row = np.repeat(np.arange(int(grid_h)), int(grid_w) * len(sizes))
        col = np.tile(np.repeat(np.arange(int(grid_w)), len(sizes)), int(grid_h))
        cells[:, 0] = (row + offset) * step_h / im_h
        cells[:, 1] = (col + offset) * step_w / im_w
        layers.append(cells)
    anchors = np.concatenate(layers, axis=0)
    return _clip_priors(anchors, clip)


def _clip_priors(anchors, clip):
    """Apply one of the prior-box clipping conventions to (cy, cx, h, w) rows."""
    if clip in (False, None, 'none'):
        return anchors
    if clip == 'center_size':
        return anchors.clip(0.0, 1.0)
    if clip in (True, 'corners'):
        y1 = (anchors[:, 0] - anchors[:, 2] / 2).clip(0.0, 1.0)
        x1 = (anchors[:, 1] - anchors[:, 3] / 2).clip(0.0, 1.0)
        y2 = (anchors[:, 0] + anchors[:, 2] / 2).clip(0.0, 1.0)
        x2 = (anchors[:, 1] + anchors[:, 3] / 2).clip(0.0, 1.0)
        return np.stack([(y1 + y2) / 2, (x1 + x2) / 2, y2 - y1, x2 - x1], axis=1)
    raise ConfigError(f'anchors.clip must be one of corners, center_size, none; got {clip!r}')


TF_KEYS = {'generator', 'num_layers', 'min_scale', 'max_scale', 'scales', 'feature_map_sizes',
           'strides', 'image_size', 'aspect_ratios', 'interpolated_scale_aspect_ratio',
           'reduce_boxes_in_lowest_layer', 'anchor_offset', 'base_anchor_size'}
PRIOR_KEYS = {'generator', 'image_size', 'feature_map_sizes', 'steps', 'min_sizes', 'max_sizes',
              'aspect_ratios', 'flip', 'clip', 'offset'}


def _image_size(value, path):
    """Parse an image size given as one int (square) or [height, width]."""
    return _pairs([value], path)[0]


def _feature_maps(mapping, path):
    """Feature map sizes given directly, or derived as ceil(image / stride) like MediaPipe."""
    sizes = mapping.get('feature_map_sizes')
    if sizes is not None:
        return _pairs(sizes, f'{path}.feature_map_sizes', whole=True, low=1)
    if mapping.get('strides') is not None and mapping.get('image_size') is not None:
        im_h, im_w = _image_size(mapping['image_size'], f'{path}.image_size')
        strides = _pairs(mapping['strides'], f'{path}.strides')
        return [(math.ceil(im_h / sh), math.ceil(im_w / sw)) for sh, sw in strides]
    raise ConfigError(f'{path}.feature_map_sizes is required (or both {path}.strides and '
                      f'{path}.image_size to derive them)')


def _tf_anchors_from_config(mapping, path):
    """Build TF multiple-grid anchors from a validated mapping."""
    check.known_keys(mapping, TF_KEYS, path)
    feature_maps = _feature_maps(mapping, path)
    num_layers = check.integer(mapping.get('num_layers', len(feature_maps)),
                               f'{path}.num_layers', low=1)
    if num_layers != len(feature_maps):
        raise ConfigError(f'{path}.num_layers is {num_layers} but {len(feature_maps)} feature '
                          'map sizes are given; they must match')
    scales = mapping.get('scales')
    if scales is not None:
        scales = check.numbers(scales, f'{path}.scales', low=0.0)
    specs = tf_box_specs(
        num_layers,
        min_scale=check.number(mapping.get('min_scale', 0.2), f'{path}.min_scale', low=0.0),
        max_scale=check.number(mapping.get('max_scale', 0.95), f'{path}.max_scale', low=0.0),
        scales=scales,
        aspect_ratios=check.numbers(mapping.get('aspect_ratios', [1.0, 2.0, 0.5, 3.0, 1 / 3]),
                                    f'{path}.aspect_ratios', low=1e-6),
        interpolated_scale_aspect_ratio=check.number(
            mapping.get('interpolated_scale_aspect_ratio', 1.0),
            f'{path}.interpolated_scale_aspect_ratio', low=0.0),
        reduce_boxes_in_lowest_layer=check.boolean(
            mapping.get('reduce_boxes_in_lowest_layer', True),
            f'{path}.reduce_boxes_in_lowest_layer'))
    image_size = mapping.get('image_size')
    return tf_multiple_grid_anchors(
        feature_maps, specs,
        anchor_offset=check.number(mapping.get('anchor_offset', 0.5), f'{path}.anchor_offset'),
        base_anchor_size=check.numbers(mapping.get('base_anchor_size', [1.0, 1.0]),
                                       f'{path}.base_anchor_size', length=2),
        image_size=None if image_size is None else _image_size(image_size, f'{path}.image_size'))


def _prior_anchors_from_config(mapping, path):
    """Build original-SSD prior boxes from a validated mapping."""
    check.known_keys(mapping, PRIOR_KEYS, path)
    image_size = _image_size(check.required(mapping, 'image_size', path), f'{path}.image_size')
    feature_maps = _feature_maps(mapping, path)
    steps = _pairs(check.required(mapping, 'steps', path), f'{path}.steps')
    min_sizes = check.numbers(check.required(mapping, 'min_sizes', path), f'{path}.min_sizes',
                              low=1e-6)
    max_sizes = mapping.get('max_sizes')
    if max_sizes is not None:
        max_sizes = check.numbers(max_sizes, f'{path}.max_sizes', low=1e-6)
    ratios = mapping.get('aspect_ratios')
    if ratios is not None:
        if not isinstance(ratios, (list, tuple)):
            raise check.invalid(f'{path}.aspect_ratios', 'one list per feature map', ratios)
        ratios = [check.numbers(r, f'{path}.aspect_ratios[{i}]', low=1e-6) if r else []
                  for i, r in enumerate(ratios)]
    return ssd_prior_boxes(image_size, feature_maps, steps, min_sizes, max_sizes, ratios,
                           flip=check.boolean(mapping.get('flip', True), f'{path}.flip'),
                           clip=mapping.get('clip', 'corners'),
                           offset=check.number(mapping.get('offset', 0.5), f'{path}.offset'))


GENERATORS = {'tf_multiple_grid': _tf_anchors_from_config,
              'ssd_prior_box': _prior_anchors_from_config}


def anchors_from_config(mapping, path='decoder.anchors'):
    """Generate anchors from the ``decoder.anchors`` mapping; ConfigError names bad keys."""
    check.mapping(mapping, path)
    generator = check.choice(check.required(mapping, 'generator', path), sorted(GENERATORS),
                             f'{path}.generator')
    return GENERATORS[generator](mapping, path)
