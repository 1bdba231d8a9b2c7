"""ROS messages as rosbags dataclasses: building them, and reading frames and results out of them.

The Detection2DArray built here carries exactly what perception_node publishes (same header,
box center/size in original-image pixels, ``class_id`` = label, score), so an output bag of
``process_bag`` and a recording of the live node compare field by field.
"""

import numpy as np

from dali_trt_ros.bags.typestore import (COMPRESSED_IMAGE, DETECTIONS, IMAGE, LABEL_INFO,
                                         typestore)
from dali_trt_ros.nodes.ros_io import MAX_CHILD_FRAME_ID  # module without ROS imports
from dali_trt_ros.preprocess.inputs import EncodedFrame, RawFrame

MONO8 = 'mono8'


def _types():
    return typestore().types


def stamp_ns(header):
    """Nanoseconds since the epoch of a header's stamp (the key frames are matched by)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def header(stamp, frame_id):
    """std_msgs/Header for a stamp in nanoseconds."""
    types = _types()
    sec, nanosec = divmod(int(stamp), 1_000_000_000)
    return types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec), frame_id=frame_id)


def image(head, array, encoding):
    """sensor_msgs/Image of an (H, W[, C]) uint8 array, rows unpadded."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    channels = 1 if array.ndim == 2 else array.shape[2]
    return _types()[IMAGE](header=head, height=array.shape[0], width=array.shape[1],
                           encoding=encoding, is_bigendian=0, step=array.shape[1] * channels,
                           data=array.reshape(-1))


def compressed_image(head, encoded, codec='jpeg'):
    """sensor_msgs/CompressedImage of encoded bytes (image_transport's ``format`` field)."""
    return _types()[COMPRESSED_IMAGE](header=head, format=codec,
                                      data=np.frombuffer(bytes(encoded), np.uint8))


def detections(head, result):
    """vision_msgs/Detection2DArray of a Detections result (None: an empty array), as the node.

    ``class_id`` is the decimal class index (the key of the model's LabelInfo class_map).
    """
    types = _types()
    pose2d, point2d = types['vision_msgs/msg/Pose2D'], types['vision_msgs/msg/Point2D']
    bbox_type, detection_type = types['vision_msgs/msg/BoundingBox2D'], \
        types['vision_msgs/msg/Detection2D']
    hypothesis_type = types['vision_msgs/msg/ObjectHypothesis']
    with_pose = types['vision_msgs/msg/ObjectHypothesisWithPose']
    pose_cov = types['geometry_msgs/msg/PoseWithCovariance']
    pose, point, quat = (types['geometry_msgs/msg/Pose'], types['geometry_msgs/msg/Point'],
                         types['geometry_msgs/msg/Quaternion'])
    items = []
    rows = [] if result is None else zip(result.boxes, result.scores, result.class_ids)
    # As the node: each Detection2D carries the stamp, and the frame_id unless it is absurd.
    child = header(stamp_ns(head), head.frame_id if len(head.frame_id) <= MAX_CHILD_FRAME_ID
                   else '')
    for (x1, y1, x2, y2), score, class_id in rows:
        center = pose2d(position=point2d(x=float(x1 + x2) / 2.0, y=float(y1 + y2) / 2.0),
                        theta=0.0)
        hypothesis = with_pose(
            hypothesis=hypothesis_type(class_id=str(int(class_id)), score=float(score)),
            pose=pose_cov(pose=pose(position=point(x=0.0, y=0.0, z=0.0),
                                    orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0)),
                          covariance=np.zeros(36, np.float64)))
        items.append(detection_type(
            header=child, results=[hypothesis], id='',
            bbox=bbox_type(center=center, size_x=float(x2 - x1), size_y=float(y2 - y1))))
    return types[DETECTIONS](header=head, detections=items)


def label_info(head, labels, threshold):
    """vision_msgs/LabelInfo: class index -> name, as the node latches it per camera."""
    types = _types()
    return types[LABEL_INFO](
        header=head, threshold=float(threshold),
        class_map=[types['vision_msgs/msg/VisionClass'](class_id=index, class_name=str(name))
                   for index, name in enumerate(labels)])


def label_names(msg):
    """{class_id string: name} of a LabelInfo."""
    return {str(int(c.class_id)): c.class_name for c in msg.class_map}


def frame_of(msg):
    """Return the package's frame (RawFrame or EncodedFrame) of a camera message."""
    if hasattr(msg, 'format'):
        return EncodedFrame(msg.data, msg.format)
    return RawFrame(msg.data, int(msg.width), int(msg.height), msg.encoding, int(msg.step))


def detection_rows(msg):
    """[(label, score, x1, y1, x2, y2)] of a Detection2DArray (first hypothesis of each)."""
    rows = []
    for det in msg.detections:
        if not det.results:
            continue
        hyp = det.results[0].hypothesis
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        half_w, half_h = det.bbox.size_x / 2.0, det.bbox.size_y / 2.0
        rows.append((hyp.class_id, float(hyp.score), cx - half_w, cy - half_h, cx + half_w,
                     cy + half_h))
    return rows


def label_map(msg):
    """(H, W) uint8 class map of a mono8 mask Image (row padding honoured)."""
    if msg.encoding not in (MONO8, '8UC1'):
        raise ValueError(f'mask encoding is {msg.encoding!r}; expected mono8')
    rows = np.asarray(msg.data, np.uint8).reshape(int(msg.height), int(msg.step))
    return rows[:, :int(msg.width)]
