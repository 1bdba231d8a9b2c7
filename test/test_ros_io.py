"""Message building: class ids keyed to LabelInfo, and no input field multiplied into outputs."""

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import (Detection2D, Detection2DArray, LabelInfo,  # noqa: E402
                             ObjectHypothesisWithPose, VisionClass)

from dali_trt_ros.nodes.ros_io import detections_msg, label_info_msg  # noqa: E402

TYPES = (Detection2DArray, Detection2D, ObjectHypothesisWithPose)


class ManyDetections:
    count = 100
    boxes = np.tile(np.array([[1.0, 2.0, 3.0, 4.0]], np.float32), (count, 1))
    scores = np.full(count, 0.5, np.float32)
    class_ids = np.arange(count) % 24
    labels = ['x'] * count


def test_a_huge_frame_id_stays_in_the_array_header_only():
    header = Header(frame_id='f' * 4_000_000)
    header.stamp.sec = 7
    msg = detections_msg(header, ManyDetections, TYPES)
    assert msg.header.frame_id == header.frame_id  # the input's header, unchanged
    assert len(msg.detections) == 100
    # Not 100 copies of 4 MB: children carry the stamp, not the oversized frame_id.
    assert all(d.header.frame_id == '' and d.header.stamp.sec == 7 for d in msg.detections)


def test_normal_frame_ids_are_repeated_in_children():
    header = Header(frame_id='cam_front')
    msg = detections_msg(header, ManyDetections, TYPES)
    assert {d.header.frame_id for d in msg.detections} == {'cam_front'}


def test_class_ids_are_label_info_keys():
    labels = ['background', 'Person', 'Cat']
    info = label_info_msg(Header(), labels, 0.4, (LabelInfo, VisionClass))
    names = {str(c.class_id): c.class_name for c in info.class_map}
    assert names == {'0': 'background', '1': 'Person', '2': 'Cat'}
    assert abs(info.threshold - 0.4) < 1e-6
    msg = detections_msg(Header(), ManyDetections, TYPES)
    assert {d.results[0].hypothesis.class_id for d in msg.detections} == {
        str(i) for i in range(24)}
