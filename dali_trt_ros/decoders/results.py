"""Decoded results of one frame, in original-image pixels, free of ROS types."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    """Detections of one frame.

    ``boxes``: (K, 4) float32 x1, y1, x2, y2 in original-image pixels, clipped to the image.
    ``class_ids`` index the model's label list, so ``labels[k] == label_list[class_ids[k]]``.
    Rows are sorted by descending score.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    labels: list = field(default_factory=list)

    @classmethod
    def empty(cls):
        """Return the detections of a frame where nothing was found."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   [])

    def __len__(self):
        return int(self.scores.shape[0])

    def to_rows(self):
        """One dict per detection (label, class_id, score, x1, y1, x2, y2), for tables and logs."""
        return [{'label': label, 'class_id': int(class_id), 'score': float(score),
                 'x1': float(box[0]), 'y1': float(box[1]), 'x2': float(box[2]),
                 'y2': float(box[3])}
                for box, score, class_id, label in zip(self.boxes, self.scores, self.class_ids,
                                                       self.labels)]


@dataclass
class SegmentationResult:
    """Per-pixel classes of one frame at the original image size.

    ``label_map``: (H, W) uint8 class ids; ``class_fractions``: label -> share of the image's
    pixels (sums to 1 over all labels).
    """

    label_map: np.ndarray
    class_fractions: dict
    labels: list = field(default_factory=list)

    def colorize(self, palette):
        """(H, W, 3) uint8 image of the label map painted with a (>= num classes, 3) palette."""
        palette = np.asarray(palette, dtype=np.uint8)
        if palette.ndim != 2 or palette.shape[1] != 3:
            raise ValueError(f'palette must be (num_colors, 3), got shape {palette.shape}')
        highest = int(self.label_map.max()) if self.label_map.size else 0
        if highest >= palette.shape[0]:
            raise ValueError(f'palette has {palette.shape[0]} colors but the map contains class '
                             f'{highest}; use a longer palette (e.g. voc_palette(256))')
        return palette[self.label_map]
