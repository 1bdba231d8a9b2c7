"""Conversions between ROS messages and the package's plain-Python frames and results."""

import numpy as np


def _image_msg(header, array, encoding):
    from sensor_msgs.msg import Image
    channels = 1 if array.ndim == 2 else array.shape[2]
    msg = Image(header=header, height=array.shape[0], width=array.shape[1], encoding=encoding,
                step=array.shape[1] * channels)
    msg.data = np.ascontiguousarray(array).tobytes()  # bytes: assigning ndarrays is slow
    return msg


def mono8_msg(header, label_map):
    """Build a mono8 sensor_msgs/Image of a class-id map (original-image size), with the header."""
    return _image_msg(header, label_map.astype(np.uint8, copy=False), 'mono8')


def rgb8_msg(header, rgb):
    """Build an rgb8 sensor_msgs/Image with the header."""
    return _image_msg(header, rgb, 'rgb8')


def render_overlay(rgb, detections, segmentation):
    """Boxes and a translucent class mask over the frame, for rviz."""
    from dali_trt_ros.decoders.drawing import draw_detections, overlay, voc_palette
    image = rgb
    if segmentation is not None:
        image = overlay(image, segmentation.label_map, voc_palette())
    if detections is not None:
        image = draw_detections(image, detections)
    return image


# A child Detection2D repeats the array's header; a frame_id longer than this (no real TF frame
# is) stays in the array header only, so one large input field cannot be multiplied by K.
MAX_CHILD_FRAME_ID = 256


def detections_msg(header, detections, message_types):
    """Build a vision_msgs/Detection2DArray with the input header and original-pixel boxes.

    `detections` is any object with boxes (K,4 xyxy), scores (K,) and class_ids (K,);
    `message_types` supplies the vision_msgs classes (imported by the node). ``class_id`` is
    the decimal class index, the key of the model's vision_msgs/LabelInfo ``class_map``.
    """
    array_cls, detection_cls, hypothesis_cls = message_types
    out = array_cls(header=header)
    if detections is None:
        return out
    child_header = type(header)(stamp=header.stamp)
    if len(header.frame_id) <= MAX_CHILD_FRAME_ID:
        child_header.frame_id = header.frame_id
    for (x1, y1, x2, y2), score, class_id in zip(
            detections.boxes, detections.scores, detections.class_ids):
        det = detection_cls(header=child_header)
        det.bbox.center.position.x = float(x1 + x2) / 2.0
        det.bbox.center.position.y = float(y1 + y2) / 2.0
        det.bbox.size_x = float(x2 - x1)
        det.bbox.size_y = float(y2 - y1)
        hyp = hypothesis_cls()
        hyp.hypothesis.class_id = str(int(class_id))
        hyp.hypothesis.score = float(score)
        det.results.append(hyp)
        out.detections.append(det)
    return out


def label_info_msg(header, labels, threshold, message_types):
    """Build a vision_msgs/LabelInfo: class index -> label for every label of a model."""
    label_info_cls, vision_class_cls = message_types
    return label_info_cls(
        header=header, threshold=float(threshold),
        class_map=[vision_class_cls(class_id=index, class_name=str(name))
                   for index, name in enumerate(labels)])
