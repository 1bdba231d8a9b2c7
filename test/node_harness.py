"""Drive a perception_node process over DDS: publish frames, collect outputs and diagnostics."""

import time

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ros_helpers import spin_until, stop_node

DISCOVERY_TIMEOUT = 30.0  # >= 5 s: first discovery on a loaded 2-core CI machine can be slow
REPLY_TIMEOUT = 20.0
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
LEVELS = {b'\x00': 'OK', b'\x01': 'WARN', b'\x02': 'ERROR', b'\x03': 'STALE'}


def reliable_input(*topics):
    """--ros-args making the node's inputs reliable (tests must not lose single frames)."""
    args = []
    for topic in topics:
        args += ['-p', f'qos_overrides.{topic}.subscription.reliability:=reliable']
    return args


class Harness:
    """A tester node next to one perception_node process."""

    def __init__(self, tester, proc, node_name):
        self.tester, self.proc, self.node_name = tester, proc, node_name
        self.diagnostics = []
        tester.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 50)

    def publisher(self, topic, msg_type, qos=RELIABLE):
        """A publisher, returned once the node's subscription has matched it."""
        pub = self.tester.create_publisher(msg_type, topic, qos)
        self.wait(lambda: pub.get_subscription_count() >= 1, DISCOVERY_TIMEOUT,
                  f'the node never subscribed to {topic}')
        return pub

    def collect(self, topic, msg_type, qos=RELIABLE):
        """A list that fills with what the node publishes on `topic`."""
        received = []
        self.tester.create_subscription(msg_type, topic, received.append, qos)
        self.wait(lambda: self.tester.count_publishers(topic) >= 1, DISCOVERY_TIMEOUT,
                  f'the node never published {topic}')
        return received

    def wait(self, condition, timeout=REPLY_TIMEOUT, what='condition'):
        """Spin until condition(); fail with the node's output if it never holds."""
        if not spin_until(self.tester, condition, timeout, self.proc):
            code, out = stop_node(self.proc)
            what = what() if callable(what) else what
            raise AssertionError(f'{what} (node exit {code}):\n{out[-4000:]}')

    def spin_for(self, seconds):
        """Keep the tester spinning (callbacks delivered) for a while."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            spin_until(self.tester, lambda: False, min(0.1, deadline - time.monotonic()))

    def status(self, part):
        """Latest values of status '<node>: <part>', with 'level'; {} if none yet."""
        name = f'{self.node_name}: {part}'
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == name:
                    values = {kv.key: kv.value for kv in status.values}
                    values['level'] = LEVELS.get(status.level, status.level)
                    values['message'] = status.message
                    return values
        return {}

    def wait_status(self, part, predicate, timeout=REPLY_TIMEOUT):
        """Wait for a status of `part` whose values satisfy predicate; return them."""
        found = {}

        def matches():
            found.update(self.status(part))
            return bool(found) and predicate(found)
        self.wait(matches, timeout, lambda: f'status {part!r} never matched; last: {found}')
        return self.status(part)


def raw_frame(rgb, stamp_sec, frame_id='cam'):
    """An rgb8 sensor_msgs/Image of `rgb`."""
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', step=rgb.shape[1] * 3)
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, frame_id
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def jpeg_frame(rgb, stamp_sec, frame_id='cam', data=None):
    """A JPEG sensor_msgs/CompressedImage of `rgb` (or of given JPEG bytes)."""
    if data is None:
        ok, encoded = cv2.imencode('.jpg', rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        data = encoded.tobytes()
    msg = CompressedImage(format='jpeg', data=data)
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, frame_id
    return msg
