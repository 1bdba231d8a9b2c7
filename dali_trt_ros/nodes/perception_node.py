"""perception_node: camera frames in, vision_msgs detections and diagnostics out.

Threading: the subscription callback only hands the message to a one-deep mailbox
(LatestFrameSlot) and returns, so DDS is always drained; a worker thread processes the newest
frame. Frames replaced before processing are counted as dropped, frames that fail are counted
by reason, and both appear in /diagnostics.
"""

import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from dali_trt_ros.errors import ConfigError, PerceptionError
from dali_trt_ros.frame_stats import FrameStats, LatestFrameSlot
from dali_trt_ros.nodes import ros_io

_DETECTION_TYPES = (Detection2DArray, Detection2D, ObjectHypothesisWithPose)


def _choice(node, name, default, choices, description, read_only=True):
    descriptor = ParameterDescriptor(
        description=f'{description} One of: {", ".join(choices)}.', read_only=read_only)
    value = node.declare_parameter(name, default, descriptor).value
    if value not in choices:
        raise ConfigError(f'parameter {name!r} is {value!r}; expected one of {list(choices)}')
    return value


def _integer(node, name, default, low, high, description, read_only=True):
    descriptor = ParameterDescriptor(
        description=description, read_only=read_only,
        integer_range=[IntegerRange(from_value=low, to_value=high, step=1)])
    return node.declare_parameter(name, default, descriptor).value


def _double(node, name, default, low, high, description, read_only=False):
    descriptor = ParameterDescriptor(
        description=description, read_only=read_only,
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)])
    return node.declare_parameter(name, default, descriptor).value


class PerceptionNode(Node):
    """Subscribes to one camera, publishes detections with the frame's header, and diagnostics."""

    def __init__(self, **kwargs):
        super().__init__('perception_node', **kwargs)
        self.transport = _choice(self, 'input_transport', 'raw', ('raw', 'compressed'),
                                 'Subscribe to sensor_msgs/Image on "image" (raw) or '
                                 'sensor_msgs/CompressedImage on "image/compressed".')
        reliability = _choice(self, 'qos_reliability', 'best_effort',
                              ('best_effort', 'reliable'),
                              'Input QoS; best_effort also matches reliable publishers.')
        depth = _integer(self, 'qos_depth', 5, 1, 100, 'Input queue depth (DDS history).')
        period = _double(self, 'diagnostics_period_s', 1.0, 0.1, 60.0,
                         'Seconds between /diagnostics messages.', read_only=True)
        self.hardware_id = self.declare_parameter(
            'hardware_id', 'camera', ParameterDescriptor(
                description='hardware_id reported in diagnostics.', read_only=True)).value

        self.stats = FrameStats()
        self._slot = LatestFrameSlot(self.stats)
        qos = QoSProfile(depth=depth, reliability=(
            ReliabilityPolicy.RELIABLE if reliability == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT))
        msg_type, topic = ((Image, 'image') if self.transport == 'raw'
                           else (CompressedImage, 'image/compressed'))
        self.detections_pub = self.create_publisher(Detection2DArray, 'detections', 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.image_sub = self.create_subscription(msg_type, topic, self._on_image, qos)
        self.create_timer(period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='perception_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'listening on {self.image_sub.topic_name} ({msg_type.__name__}, {reliability}, '
            f'depth {depth}); publishing {self.detections_pub.topic_name}')

    def _on_image(self, msg):
        self.stats.on_received()
        self._slot.put((msg, time.monotonic()))

    def _work(self):
        while not self._slot.closed:
            item = self._slot.take(timeout=0.5)
            if item is not None:
                self._process(*item)

    def _process(self, msg, arrived):
        try:
            result = self.process_frame(msg)
            out = ros_io.detections_msg(msg.header, result, _DETECTION_TYPES)
            self.detections_pub.publish(out)
        except PerceptionError as error:
            self.stats.on_failed(error)
            self.get_logger().warning(f'frame {msg.header.stamp.sec}.'
                                      f'{msg.header.stamp.nanosec:09d} skipped: {error}',
                                      throttle_duration_sec=2.0)
            return
        except Exception as error:  # noqa: B902 - a bug must not take the node down; count it
            self.stats.on_failed(error)
            self.get_logger().error(f'unexpected {type(error).__name__}: {error}',
                                    throttle_duration_sec=2.0)
            return
        self.stats.on_processed(time.monotonic() - arrived)

    def process_frame(self, msg):
        """Validate the frame and return detections (none yet: models arrive with later work)."""
        if self.transport == 'raw':
            ros_io.image_msg_view(msg)
        else:
            ros_io.compressed_msg_bytes(msg)
        return None

    def _publish_diagnostics(self):
        snap = self.stats.snapshot()
        status = DiagnosticStatus(name=f'{self.get_name()}: frames', hardware_id=self.hardware_id)
        if snap['frames_received'] == 0:
            status.level, status.message = DiagnosticStatus.WARN, 'no frames received yet'
        elif snap['frames_failed'] or snap['frames_dropped']:
            status.level = DiagnosticStatus.WARN
            status.message = (f"{snap['frames_failed']} failed, {snap['frames_dropped']} dropped "
                              f"of {snap['frames_received']}")
        else:
            status.level, status.message = DiagnosticStatus.OK, 'processing'
        status.values = [KeyValue(key=k, value=(f'{v:.3f}' if isinstance(v, float) else str(v)))
                         for k, v in snap.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self):
        """Stop the worker (a pending frame counts as dropped) before tearing down."""
        self._slot.close()
        self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args=None):
    """Run the node until Ctrl-C or shutdown; exit 2 on invalid parameters."""
    rclpy.init(args=args)
    node = None
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except ConfigError as error:
        print(f'perception_node: {error}', file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
