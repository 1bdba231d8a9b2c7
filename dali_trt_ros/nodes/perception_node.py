"""perception_node: camera frames in; detections, masks, overlays and diagnostics out.

With ``models`` empty the node only validates frames (and still answers with empty detections);
with models it runs the PerceptionPipeline: one decode, every model concurrently.

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
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
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


def _string_array(node, name, description):
    descriptor = ParameterDescriptor(description=description, read_only=True)
    value = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor).value
    return list(value or [])


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

        self.pipeline = self._create_pipeline()
        self.publish_overlay = self.declare_parameter(
            'publish_overlay', True, ParameterDescriptor(
                description='Publish "overlay" (boxes and mask over the frame) when someone '
                            'subscribes.')).value
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.stats = FrameStats()
        self._slot = LatestFrameSlot(self.stats)
        qos = QoSProfile(depth=depth, reliability=(
            ReliabilityPolicy.RELIABLE if reliability == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT))
        msg_type, topic = ((Image, 'image') if self.transport == 'raw'
                           else (CompressedImage, 'image/compressed'))
        self.detections_pub = self.create_publisher(Detection2DArray, 'detections', 10)
        self.mask_pub = self.create_publisher(Image, 'segmentation', 10)
        self.overlay_pub = self.create_publisher(Image, 'overlay', 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.image_sub = self.create_subscription(msg_type, topic, self._on_image, qos)
        self.create_timer(period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='perception_worker', daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'listening on {self.image_sub.topic_name} ({msg_type.__name__}, {reliability}, '
            f'depth {depth}); publishing {self.detections_pub.topic_name}')

    def _create_pipeline(self):
        """Declare the model parameters and build the chain (None: validate frames only)."""
        models = _string_array(self, 'models', 'Model descriptions (names in '
                               'config/models or YAML paths); empty: validate frames only.')
        backend = _choice(self, 'backend', 'onnxruntime', ('onnxruntime', 'tensorrt'),
                          'Inference backend.')
        providers = _string_array(self, 'providers', 'ONNX Runtime providers: cpu, cuda.')
        device = _choice(self, 'preprocess_device', 'auto', ('auto', 'gpu', 'cpu'),
                         'Where to decode/resize: auto picks the GPU when DALI can use it.')
        device_id = _integer(self, 'device_id', 0, 0, 15, 'CUDA device.')
        engines_file = self.declare_parameter('engine_config_file', '', ParameterDescriptor(
            description='YAML mapping model name -> engine settings (precision, dla_core, '
                        'engine_cache_dir, ...).', read_only=True)).value
        self._thresholds = {
            'score_threshold': _double(self, 'score_threshold', 0.4, 0.0, 1.0,
                                       'Minimum detection score (run-time adjustable).'),
            'nms_iou_threshold': _double(self, 'nms_iou_threshold', 0.5, 0.0, 1.0,
                                         'NMS IoU threshold (run-time adjustable).'),
            'mask_threshold': _double(self, 'mask_threshold', 0.5, 0.0, 1.0,
                                      'Probability threshold of single-channel masks.'),
        }
        if not models:
            return None
        from dali_trt_ros.perception import PerceptionPipeline
        overrides = {}
        if engines_file:
            import yaml
            try:
                with open(engines_file) as stream:
                    overrides = yaml.safe_load(stream) or {}
            except OSError as error:
                raise ConfigError(f"parameter 'engine_config_file': {error}") from None
        pipeline = PerceptionPipeline.from_models(
            models, backend=backend, providers=tuple(providers or ['cpu']), device=device,
            device_id=device_id, engine_overrides=overrides)
        for name, value in self._thresholds.items():
            self._apply_threshold(pipeline, name, value)
        self.get_logger().info(
            f'models: {", ".join(r.name for r in pipeline.models)} on {backend} '
            f'{providers or ["cpu"]}; preprocessing: {pipeline.preprocessor.backend}')
        return pipeline

    @staticmethod
    def _apply_threshold(pipeline, name, value):
        keyword = {'score_threshold': 'score', 'nms_iou_threshold': 'nms_iou',
                   'mask_threshold': 'mask'}[name]
        pipeline.set_thresholds(**{keyword: value})

    def _on_set_parameters(self, params):
        for param in params:
            # The descriptors' 0..1 ranges are enforced by rclpy before this callback runs.
            if param.name in self._thresholds:
                self._thresholds[param.name] = param.value
                if self.pipeline is not None:
                    self._apply_threshold(self.pipeline, param.name, param.value)
        return SetParametersResult(successful=True)

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
        """Run the models on one frame, publish masks/overlay, return its detections."""
        from dali_trt_ros.preprocess.inputs import decode_rgb, frame_from_message, prepare_frame
        frame = frame_from_message(msg)
        if self.pipeline is None:
            prepare_frame(frame)  # validation only: raises a typed FrameError
            return None
        [result] = self.pipeline.process([frame])
        if result.error is not None:
            raise result.error
        detections = next(iter(result.detections.values()), None)
        segmentation = next(iter(result.segmentations.values()), None)
        if segmentation is not None:
            self.mask_pub.publish(ros_io.mono8_msg(msg.header, segmentation.label_map))
        if self.publish_overlay and self.overlay_pub.get_subscription_count() > 0:
            rgb = decode_rgb(prepare_frame(frame))
            self.overlay_pub.publish(ros_io.rgb8_msg(
                msg.header, ros_io.render_overlay(rgb, detections, segmentation)))
        return detections

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
    """Run the node until Ctrl-C or shutdown; exit 2 on invalid parameters or models."""
    rclpy.init(args=args)
    node = None
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except PerceptionError as error:  # ConfigError, ModelError: the message says what to do
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
