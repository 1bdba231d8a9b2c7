"""The vision_msgs built here is the real vision_msgs 4.x: same fields, same type hash."""

import json
import pathlib
import sys

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from rosbags.typesys import get_types_from_msg, Stores, get_typestore  # noqa: E402

from dali_trt_ros.nodes.ros_io import detections_msg  # noqa: E402

MSG_DIR = pathlib.Path(__file__).resolve().parents[1] / 'interfaces' / 'vision_msgs' / 'msg'


def _rosbags_store():
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(MSG_DIR.glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
    store.register(types)
    return store


def test_type_hashes_agree_with_an_independent_implementation():
    """rosidl (C/CMake toolchain) and rosbags (pure Python) hash the same definitions."""
    store = _rosbags_store()
    share = pathlib.Path(sys.prefix) / 'share' / 'vision_msgs' / 'msg'
    for path in sorted(MSG_DIR.glob('*.msg')):
        generated = json.loads((share / f'{path.stem}.json').read_text())
        name = f'vision_msgs/msg/{path.stem}'
        rosidl_hash = next(h['hash_string'] for h in generated['type_hashes']
                           if h['type_name'] == name)
        assert store.hash_rihs01(name) == rosidl_hash, name


def test_detection_array_round_trips_between_rclpy_and_rosbags():
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    class Dets:
        boxes = np.array([[10.0, 20.0, 110.0, 220.0]])
        scores = np.array([0.75])
        class_ids = np.array([3])
        labels = ['Person']

    header = Header(frame_id='cam')
    header.stamp.sec = 42
    msg = detections_msg(header, Dets, (Detection2DArray, Detection2D, ObjectHypothesisWithPose))
    det = msg.detections[0]
    assert (det.bbox.center.position.x, det.bbox.center.position.y) == (60.0, 120.0)
    assert (det.bbox.size_x, det.bbox.size_y) == (100.0, 200.0)
    # class_id is the class index, the key of LabelInfo.class_map (names live there).
    assert det.header.stamp.sec == 42 and det.results[0].hypothesis.class_id == '3'
    assert det.header.frame_id == 'cam'

    raw = serialize_message(msg)
    store = _rosbags_store()
    decoded = store.deserialize_cdr(raw, 'vision_msgs/msg/Detection2DArray')
    assert decoded.detections[0].results[0].hypothesis.score == 0.75
    assert decoded.header.frame_id == 'cam'
    # Compare messages, not bytes: CDR alignment padding is not guaranteed to be zeroed.
    again = bytes(store.serialize_cdr(decoded, 'vision_msgs/msg/Detection2DArray'))
    assert len(again) == len(raw)
    assert deserialize_message(again, Detection2DArray) == msg
    assert deserialize_message(raw, Detection2DArray) == msg
