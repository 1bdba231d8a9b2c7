"""Conversions between ROS messages and the package's plain-Python frames and results."""

import numpy as np

from dali_trt_ros.errors import UnsupportedEncodingError
from dali_trt_ros.frames import raw_frame_view

# CompressedImage.format is free text: 'jpeg', 'png', or image_transport's
# 'rgb8; jpeg compressed bgr8'. The codec is the word after the last ';' or the whole string.
_CODECS = {'jpeg': 'jpeg', 'jpg': 'jpeg', 'png': 'png'}
_MAGIC = {'jpeg': b'\xff\xd8', 'png': b'\x89PNG'}


def image_msg_view(msg):
    """Return the (H, W, C) uint8 view of a sensor_msgs/Image without copying pixels."""
    if msg.is_bigendian and msg.encoding not in ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'):
        raise UnsupportedEncodingError(f'big-endian {msg.encoding!r} images are not supported')
    return raw_frame_view(msg.data, msg.height, msg.width, msg.encoding, msg.step)


def compressed_codec(format_field, data=b''):
    """Name the codec ('jpeg' or 'png') of a CompressedImage from its format and magic bytes."""
    words = format_field.lower().replace(';', ' ').split()
    named = [_CODECS[w] for w in words if w in _CODECS]
    sniffed = next((c for c, magic in _MAGIC.items() if bytes(data[:len(magic)]) == magic), None)
    codec = sniffed or (named[-1] if named else None)
    if codec is None:
        raise UnsupportedEncodingError(
            f'CompressedImage format {format_field!r} is not jpeg or png and the data does not '
            f'start with a JPEG or PNG signature; republish as jpeg/png or as a raw Image')
    return codec


def compressed_msg_bytes(msg):
    """Return (uint8 view of the encoded bytes, codec) of a sensor_msgs/CompressedImage."""
    data = np.frombuffer(msg.data, dtype=np.uint8)
    return data, compressed_codec(msg.format, data[:8].tobytes())


def detections_msg(header, detections, message_types):
    """Build a vision_msgs/Detection2DArray with the input header and original-pixel boxes.

    `detections` is any object with boxes (K,4 xyxy), scores (K,), class_ids (K,) and labels
    (list of K str); `message_types` supplies the vision_msgs classes (imported by the node).
    """
    array_cls, detection_cls, hypothesis_cls = message_types
    out = array_cls(header=header)
    if detections is None:
        return out
    for (x1, y1, x2, y2), score, class_id, label in zip(
            detections.boxes, detections.scores, detections.class_ids, detections.labels):
        det = detection_cls(header=header)
        det.bbox.center.position.x = float(x1 + x2) / 2.0
        det.bbox.center.position.y = float(y1 + y2) / 2.0
        det.bbox.size_x = float(x2 - x1)
        det.bbox.size_y = float(y2 - y1)
        hyp = hypothesis_cls()
        hyp.hypothesis.class_id = str(label) if label else str(int(class_id))
        hyp.hypothesis.score = float(score)
        det.results.append(hyp)
        out.detections.append(det)
    return out
