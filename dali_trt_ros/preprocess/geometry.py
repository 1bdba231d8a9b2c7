"""Where a model-input pixel came from in the original frame.

A frame of ``orig_width`` x ``orig_height`` is resized by ``scale_x``/``scale_y`` and placed at
(``pad_left``, ``pad_top``) inside the ``input_width`` x ``input_height`` model input. Stretch
resizing has no padding and independent scales; letterboxing has one scale and padding.
Coordinates are continuous pixel coordinates (the left edge of pixel 0 is x = 0).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameGeometry:
    """Mapping between original-image pixels and model-input pixels for one frame."""

    orig_width: int
    orig_height: int
    input_width: int
    input_height: int
    scale_x: float
    scale_y: float
    pad_left: float = 0.0
    pad_top: float = 0.0

    @classmethod
    def stretch(cls, orig_width, orig_height, input_width, input_height):
        """Geometry of resizing the whole frame to the input size, ignoring aspect ratio."""
        return cls(orig_width, orig_height, input_width, input_height,
                   input_width / orig_width, input_height / orig_height)

    @classmethod
    def letterbox(cls, orig_width, orig_height, input_width, input_height):
        """Geometry of keeping aspect ratio and centring the resized frame with padding.

        The resized size is rounded to whole pixels; padding splits the remainder, with the
        extra pixel (if any) on the right/bottom.
        """
        scale = min(input_width / orig_width, input_height / orig_height)
        resized_w = min(input_width, max(1, int(round(orig_width * scale))))
        resized_h = min(input_height, max(1, int(round(orig_height * scale))))
        return cls(orig_width, orig_height, input_width, input_height,
                   resized_w / orig_width, resized_h / orig_height,
                   float((input_width - resized_w) // 2), float((input_height - resized_h) // 2))

    @property
    def resized_width(self):
        """Width in input pixels that the image content covers."""
        return int(round(self.orig_width * self.scale_x))

    @property
    def resized_height(self):
        """Height in input pixels that the image content covers."""
        return int(round(self.orig_height * self.scale_y))

    def input_to_original(self, xy):
        """Map (..., 2) input-pixel coordinates (x, y) to original-image pixels."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(xy[..., 0] - self.pad_left) / self.scale_x,
                         (xy[..., 1] - self.pad_top) / self.scale_y], axis=-1)

    def boxes_to_original(self, boxes_xyxy, clip=True):
        """Map (N, 4) boxes (x1, y1, x2, y2) in input pixels to original pixels, clipped."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        out = np.empty_like(boxes)
        out[:, 0::2] = (boxes[:, 0::2] - self.pad_left) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.pad_top) / self.scale_y
        if clip:
            out[:, 0::2] = out[:, 0::2].clip(0, self.orig_width)
            out[:, 1::2] = out[:, 1::2].clip(0, self.orig_height)
        return out

    def normalized_boxes_to_original(self, boxes_xyxy, clip=True):
        """Map (N, 4) boxes normalized to [0, 1] of the model input to original pixels."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        scale = np.array([self.input_width, self.input_height] * 2, dtype=np.float64)
        return self.boxes_to_original(boxes * scale, clip=clip)

    def content_window(self):
        """(x0, y0, x1, y1) integer window of the input that holds image content (no padding)."""
        x0, y0 = int(round(self.pad_left)), int(round(self.pad_top))
        return x0, y0, x0 + self.resized_width, y0 + self.resized_height
