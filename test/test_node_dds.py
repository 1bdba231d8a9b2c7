"""perception_node in its own process, driven over DDS from this one."""

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from golden_photos import (box_center_and_size, detection, person_fraction_band,  # noqa: E402
                           TOLERANCES)
from ros_helpers import spin_until, start_node, stop_node, ros_tester_node  # noqa: E402

DISCOVERY_TIMEOUT = 30.0  # >= 5 s: first discovery on a loaded 2-core CI machine can be slow
REPLY_TIMEOUT = 15.0
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture
def tester():
    with ros_tester_node('dali_trt_ros_tester') as node:
        yield node


class Harness:
    """Publishes frames to a node under test and collects what it answers."""

    def __init__(self, node, proc, msg_type, topic):
        self.node, self.proc = node, proc
        self.detections, self.diagnostics = [], []
        self.pub = node.create_publisher(msg_type, topic, RELIABLE)
        node.create_subscription(Detection2DArray, 'detections', self.detections.append, 10)
        node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)

    def wait_for_discovery(self):
        ok = spin_until(self.node, lambda: (self.pub.get_subscription_count() >= 1
                                            and self.node.count_publishers('detections') >= 1),
                        DISCOVERY_TIMEOUT, self.proc)
        assert ok, f'node did not appear on DDS: {stop_node(self.proc)}'

    def send_and_wait(self, msg):
        """Publish one frame and wait for the detections carrying its stamp."""
        count = len(self.detections)
        self.pub.publish(msg)
        assert spin_until(self.node, lambda: len(self.detections) > count, REPLY_TIMEOUT,
                          self.proc), f'no detections for frame: {stop_node(self.proc)}'
        return self.detections[-1]

    def latest_diagnostics(self, predicate):
        """Wait for a diagnostics status whose values satisfy predicate(dict)."""
        def values():
            for array in reversed(self.diagnostics):
                for status in array.status:
                    if status.name.startswith('perception_test'):
                        return {kv.key: kv.value for kv in status.values}
            return {}
        assert spin_until(self.node, lambda: predicate(values()), REPLY_TIMEOUT, self.proc), \
            f'diagnostics never matched; last: {values()}'
        return values()


def reliable_input(topic):
    """Arguments that make the node's input reliable (the default is the sensor-data profile).

    Tests publish one frame at a time and must not lose it, so they ask for reliable delivery
    through rclpy's QoS overrides, the way a user would.
    """
    return ('-p', f'qos_overrides.{topic}.subscription.reliability:=reliable')


def labels_by_id(tester, proc, topic='label_info'):
    """The latched LabelInfo of `topic` as {class_id string: name}."""
    from vision_msgs.msg import LabelInfo
    infos = []
    tester.create_subscription(LabelInfo, topic, infos.append, LATCHED)
    assert spin_until(tester, lambda: infos, REPLY_TIMEOUT, proc), 'no LabelInfo received'
    return {str(c.class_id): c.class_name for c in infos[-1].class_map}


def raw_image(stamp_sec, frame_id='cam_front', width=640, height=480, encoding='rgb8',
              pad=0, data=None):
    channels = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}.get(encoding, 3)
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels + pad)
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_sec, 123456789
    msg.header.frame_id = frame_id
    if data is None:
        data = np.random.default_rng(stamp_sec).integers(
            0, 255, msg.step * height, dtype=np.uint8).tobytes()
    msg.data = data
    return msg


def test_raw_frames_keep_headers_and_bad_frames_are_counted(tester):
    proc = start_node('dali_trt_ros.nodes.perception_node', *reliable_input('/image_raw'),
                      '-p', 'diagnostics_period_s:=0.2', name='perception_test')
    try:
        h = Harness(tester, proc, Image, 'image_raw')
        h.wait_for_discovery()
        good = [raw_image(100, encoding='rgb8'), raw_image(101, 'cam_left', encoding='bgra8'),
                raw_image(102, encoding='mono8', pad=64), raw_image(103, encoding='bgr8')]
        for msg in good[:2]:
            out = h.send_and_wait(msg)
            assert out.header.stamp == msg.header.stamp
            assert out.header.frame_id == msg.header.frame_id
            assert list(out.detections) == []

        bad = [raw_image(200, encoding='bayer_rggb16'),          # unsupported encoding
               raw_image(201, data=b'\x00' * 1000),               # length != step * height
               raw_image(202, width=0, height=0, data=b'')]       # zero size
        for failed, msg in enumerate(bad, start=1):
            # One at a time: frames sent faster than the worker runs are (correctly) dropped.
            h.pub.publish(msg)
            h.latest_diagnostics(lambda v, n=failed: v.get('frames_failed') == str(n))
        # The next good frames are still served.
        for msg in good[2:]:
            out = h.send_and_wait(msg)
            assert (out.header.stamp.sec, out.header.frame_id) == (
                msg.header.stamp.sec, msg.header.frame_id)

        diag = h.latest_diagnostics(lambda v: v.get('frames_processed') == '4'
                                    and v.get('frames_failed') == '3')
        assert diag['frames_received'] == '7'
        assert diag['frames_dropped'] == '0'
        assert diag['errors.unsupported_encoding'] == '1'
        assert diag['errors.malformed_frame'] == '2'
        assert float(diag['latency_ms.total.p50']) > 0.0
        assert diag['frames_lost_in_transport'] == '0'
        # The bad frames produced no output at all.
        assert sorted(d.header.stamp.sec for d in h.detections) == [100, 101, 102, 103]
    finally:
        code, out = stop_node(proc)
    assert code == 0, out
    assert 'Traceback' not in out, out


def test_compressed_frames(tester):
    proc = start_node('dali_trt_ros.nodes.perception_node', '-p', 'input_transport:=compressed',
                      *reliable_input('/image_raw/compressed'),
                      '-p', 'diagnostics_period_s:=0.2', name='perception_test_compressed')
    try:
        h = Harness(tester, proc, CompressedImage, 'image_raw/compressed')
        h.wait_for_discovery()
        ok, jpeg = cv2.imencode('.jpg', np.full((48, 64, 3), 128, np.uint8))
        assert ok
        msg = CompressedImage(format='jpeg', data=jpeg.tobytes())
        msg.header.stamp.sec, msg.header.frame_id = 7, 'cam_rear'
        out = h.send_and_wait(msg)
        assert (out.header.stamp.sec, out.header.frame_id) == (7, 'cam_rear')

        h.pub.publish(CompressedImage(format='tiff', data=b'II*\x00garbage'))
        h.latest_diagnostics(lambda v: v.get('frames_failed') == '1')
        msg.header.stamp.sec = 8
        assert h.send_and_wait(msg).header.stamp.sec == 8
        diag = h.latest_diagnostics(lambda v: v.get('frames_failed') == '1'
                                    and v.get('frames_processed') == '2')
        assert diag['errors.unsupported_encoding'] == '1'
    finally:
        code, out = stop_node(proc)
    assert code == 0, out


def test_invalid_parameter_is_named_and_exits_2():
    proc = start_node('dali_trt_ros.nodes.perception_node', '-p', 'input_transport:=h264',
                      name='perception_bad_param')
    out, _ = proc.communicate(timeout=60.0)
    assert proc.returncode == 2, out
    assert "'input_transport'" in out and 'h264' in out


def test_models_over_dds_with_masks_overlay_and_runtime_threshold(tester):
    from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from skimage import data

    proc = start_node('dali_trt_ros.nodes.perception_node', '-p', 'input_transport:=compressed',
                      *reliable_input('/image_raw/compressed'),
                      '-p', 'models:=[ssd_mobilenetv2_oidv4, selfie_segmentation]',
                      name='perception_test_models')
    try:
        h = Harness(tester, proc, CompressedImage, 'image_raw/compressed')
        masks, overlays = [], []
        tester.create_subscription(Image, 'segmentation', masks.append, 10)
        tester.create_subscription(Image, 'overlay', overlays.append, 10)
        h.wait_for_discovery()
        assert spin_until(tester, lambda: tester.count_publishers('overlay') >= 1, 10.0, proc)
        ok, jpeg = cv2.imencode('.jpg', data.astronaut()[:, :, ::-1])
        msg = CompressedImage(format='jpeg', data=jpeg.tobytes())
        msg.header.stamp.sec, msg.header.frame_id = 11, 'cam_front'
        out = h.send_and_wait(msg)
        assert out.header.frame_id == 'cam_front' and out.header.stamp.sec == 11
        det = out.detections[0]
        golden = detection('astronaut')
        assert labels_by_id(tester, proc)[det.results[0].hypothesis.class_id] == golden['label']
        assert det.header.stamp.sec == 11
        center_x, _, _, height = box_center_and_size('astronaut')
        tolerance = TOLERANCES['box_px']
        assert abs(det.bbox.center.position.x - center_x) < tolerance
        assert abs(det.bbox.size_y - height) < 1.5 * tolerance  # two edges' errors add up
        assert spin_until(tester, lambda: masks and overlays, REPLY_TIMEOUT, proc)
        mask = masks[-1]
        assert (mask.width, mask.height, mask.encoding) == (512, 512, 'mono8')
        assert mask.header.stamp.sec == 11 and mask.header.frame_id == 'cam_front'
        person = np.frombuffer(mask.data, np.uint8).mean()
        low, high = person_fraction_band('astronaut')
        assert low <= person <= high  # class 1 = person
        assert overlays[-1].encoding == 'rgb8' and overlays[-1].header.stamp.sec == 11

        # Raise the score threshold at run time: the same frame now yields no detections.
        client = tester.create_client(SetParameters, '/perception_test_models/set_parameters')
        assert client.wait_for_service(timeout_sec=REPLY_TIMEOUT)
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.95)
        future = client.call_async(SetParameters.Request(
            parameters=[ParameterMsg(name='score_threshold', value=value)]))
        assert spin_until(tester, future.done, REPLY_TIMEOUT, proc)
        assert future.result().results[0].successful
        # Out of range is refused (the parameter descriptor's 0..1 range).
        too_high = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=1.5)
        future = client.call_async(SetParameters.Request(
            parameters=[ParameterMsg(name='score_threshold', value=too_high)]))
        assert spin_until(tester, future.done, REPLY_TIMEOUT, proc)
        assert not future.result().results[0].successful
        msg.header.stamp.sec = 12
        assert list(h.send_and_wait(msg).detections) == []
    finally:
        code, out = stop_node(proc)
    assert code == 0, out


def test_unknown_model_is_a_clear_start_error():
    proc = start_node('dali_trt_ros.nodes.perception_node', '-p', 'models:=[no_such_model]',
                      name='perception_bad_model')
    out, _ = proc.communicate(timeout=60.0)
    assert proc.returncode == 2, out
    assert 'no_such_model' in out and 'known models' in out and 'Traceback' not in out
