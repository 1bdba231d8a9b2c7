"""Palettes and overlay drawing for visualization images (rviz), RGB uint8 throughout."""

import numpy as np

# Cityscapes train-id colors (19 evaluated classes), RGB.
CITYSCAPES_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
CITYSCAPES_LABELS = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
    'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
    'motorcycle', 'bicycle',
)


def voc_palette(num_colors=256):
    """Pascal VOC palette: the bits of the class id interleaved into R, G, B from the top bit.

    Class 0 is black, 1 dark red (128, 0, 0), 2 dark green (0, 128, 0), 3 (128, 128, 0), ...
    """
    ids = np.arange(num_colors, dtype=np.int64)
    palette = np.zeros((num_colors, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            # Bit (3 * bit + channel) of the id becomes bit (7 - bit) of the channel.
            palette[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return palette.astype(np.uint8)


def cityscapes_palette(num_colors=256):
    """Cityscapes train-id colors, padded with black to ``num_colors`` entries."""
    palette = np.zeros((max(num_colors, len(CITYSCAPES_COLORS)), 3), dtype=np.uint8)
    palette[:len(CITYSCAPES_COLORS)] = CITYSCAPES_COLORS
    return palette


PALETTES = {'voc': voc_palette, 'cityscapes': cityscapes_palette}


def palette_by_name(name, num_colors=256):
    """Palette by name (voc or cityscapes); ValueError lists the choices."""
    try:
        return PALETTES[name](num_colors)
    except KeyError:
        raise ValueError(f'unknown palette {name!r}; choose one of {sorted(PALETTES)}') from None


def overlay(image_rgb, label_map, palette, alpha=0.5, background_index=0):
    """Blend class colors over an (H, W, 3) uint8 image; background pixels stay unchanged.

    ``background_index`` None blends every pixel. Returns a new uint8 image.
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != label_map.shape:
        raise ValueError(f'overlay needs an (H, W, 3) image matching the (H, W) label map; '
                         f'got {image.shape} and {label_map.shape}')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be within [0, 1], got {alpha}')
    colors = np.asarray(palette, dtype=np.uint8)[label_map].astype(np.float32)
    blended = image.astype(np.float32) * (1.0 - alpha) + colors * alpha
    out = np.rint(blended).astype(np.uint8)
    if background_index is not None:
        keep = label_map == background_index
        out[keep] = image[keep]
    return out


def class_color(class_id):
    """Return a stable, distinct box color per class id (VOC palette, skipping black)."""
    return tuple(int(c) for c in voc_palette(256)[1 + int(class_id) % 255])


def draw_detections(image_rgb, detections, thickness=2, font_scale=0.5):
    """Return a copy of an (H, W, 3) uint8 RGB image with boxes and "label score" captions."""
    import cv2  # Heavy, and only visualization needs it.

    canvas = np.ascontiguousarray(np.array(image_rgb, dtype=np.uint8, copy=True))
    for row in detections.to_rows():
        color = class_color(row['class_id'])
        top_left = (int(round(row['x1'])), int(round(row['y1'])))
        bottom_right = (int(round(row['x2'])), int(round(row['y2'])))
        cv2.rectangle(canvas, top_left, bottom_right, color, thickness)
        caption = f'{row["label"]} {row["score"]:.2f}'
        (text_w, text_h), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX,
                                                     font_scale, 1)
        # Put the caption above the box, or inside it when the box touches the top edge.
        text_y = top_left[1] - baseline if top_left[1] - text_h - baseline >= 0 \
            else top_left[1] + text_h + baseline
        cv2.rectangle(canvas, (top_left[0], text_y - text_h - baseline),
                      (top_left[0] + text_w, text_y + baseline), color, cv2.FILLED)
        cv2.putText(canvas, caption, (top_left[0], text_y), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
