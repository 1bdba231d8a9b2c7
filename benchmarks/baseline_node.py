"""A baseline detection node, written the way a competent rclpy user would: the comparison point.

Not a product node and not installed. One subscription per camera, everything in the callback
(single-threaded executor): cv2 decode (JPEG) or a NumPy view (rgb8), ``cv2.resize``
INTER_LINEAR to the model size, normalize, ONNX Runtime (CUDA when available) with plain
``session.run`` on host arrays, then the same SSD decoding and the same Detection2DArray
message as perception_node (the package's decoder and message builder), with the input header.

Run: ``python benchmarks/baseline_node.py --ros-args -p providers:=[cuda] -p cameras:=[a,b]``
Topics: ``image_raw`` (or ``image_raw/compressed`` with ``input_transport:=compressed``) in,
``detections`` out; with ``cameras`` the same under ``<camera>/``.
"""

import functools
import sys

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from dali_trt_ros.decoders import decoder_from_config
from dali_trt_ros.models import load_model_description
from dali_trt_ros.nodes.ros_io import detections_msg
from dali_trt_ros.preprocess.geometry import FrameGeometry

MESSAGE_TYPES = (Detection2DArray, Detection2D, ObjectHypothesisWithPose)


class BaselineNode(Node):
    """SSD detections per camera, all work in the subscription callback."""

    def __init__(self):
        super().__init__('baseline_node')
        model = self.declare_parameter('model', 'ssd_mobilenetv2_oidv4').value
        providers = self.declare_parameter('providers', ['cuda']).value
        transport = self.declare_parameter('input_transport', 'raw').value
        cameras = self.declare_parameter('cameras', Parameter.Type.STRING_ARRAY).value or ['']
        import onnxruntime as ort
        description = load_model_description(model)
        wanted = ['CUDAExecutionProvider'] if 'cuda' in providers else []
        available = [p for p in wanted if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(description.onnx_path),
                                            providers=available + ['CPUExecutionProvider'])
        self.input_name = description.input['name']
        self.width, self.height = description.input['width'], description.input['height']
        self.mean = np.float32(description.input['mean'])
        self.scale = np.float32(1.0) / np.float32(description.input['std'])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.decoder = decoder_from_config(description.decoder, description.labels)
        self.decoder.score_threshold = self.declare_parameter('score_threshold', 0.4).value
        compressed = transport == 'compressed'
        self.frames_processed = 0
        for camera in cameras:
            prefix = f'{camera}/' if camera else ''
            publisher = self.create_publisher(Detection2DArray, prefix + 'detections', 10)
            self.create_subscription(
                CompressedImage if compressed else Image,
                prefix + ('image_raw/compressed' if compressed else 'image_raw'),
                functools.partial(self.on_frame, publisher=publisher, compressed=compressed),
                qos_profile_sensor_data)
        self.get_logger().info(f'baseline on {self.session.get_providers()[0]}, cameras '
                               f'{cameras}, {transport}')

    def to_rgb(self, msg, compressed):
        """Decode the message to an (H, W, 3) RGB array."""
        if compressed:
            bgr = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        image = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
        image = image[:, :msg.width * 3].reshape(msg.height, msg.width, 3)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if msg.encoding == 'bgr8' else image

    def on_frame(self, msg, publisher, compressed):
        """Decode, resize, normalize, infer, decode boxes, publish: all here."""
        rgb = self.to_rgb(msg, compressed)
        height, width = rgb.shape[:2]
        resized = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        blob = ((resized - self.mean) * self.scale).transpose(2, 0, 1)[None]
        blob = np.ascontiguousarray(blob, dtype=np.float32)
        outputs = self.session.run(self.output_names, {self.input_name: blob})
        geometry = FrameGeometry.stretch(width, height, self.width, self.height)
        [detections] = self.decoder.decode(dict(zip(self.output_names, outputs)), [geometry])
        publisher.publish(detections_msg(msg.header, detections, MESSAGE_TYPES))
        self.frames_processed += 1


def main(args=None):
    """Spin the baseline node until Ctrl-C."""
    rclpy.init(args=args)
    node = BaselineNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
