"""perception_node as a vehicle integrator meets it.

Parameters, namespaces, several cameras, LabelInfo, diagnostics that follow the camera. Node
processes are separate from this one.
"""

import pathlib
import time

import numpy as np
import pytest
from skimage import data

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
from rcl_interfaces.msg import (Parameter as ParameterMsg, ParameterType,  # noqa: E402
                                ParameterValue)
from rcl_interfaces.srv import SetParameters  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from vision_msgs.msg import Detection2DArray, LabelInfo  # noqa: E402

from node_harness import (Harness, jpeg_frame, LATCHED, raw_frame,  # noqa: E402
                          reliable_input, REPLY_TIMEOUT)
from ros_helpers import (assert_clean_output, start_node, stop_node,  # noqa: E402
                         ros_tester_node)

REPO = pathlib.Path(__file__).resolve().parents[1]
NODE = 'dali_trt_ros.nodes.perception_node'


@pytest.fixture
def tester():
    with ros_tester_node('vehicle_tester') as node:
        yield node


def _finish(proc):
    code, out = stop_node(proc)
    assert code == 0, out
    assert_clean_output(out)
    return out


BAD_PARAMETERS = [
    (['-p', 'score_threshold:=1.5'], 'score_threshold'),
    (['-p', 'diagnostics_period_s:=abc'], 'diagnostics_period_s'),
    (['-p', 'batch_timeout_ms:=-5.0'], 'batch_timeout_ms'),
    (['-p', 'cameras:=[front, front]'], 'cameras'),
    (['-p', 'cameras:=[front/left]'], 'cameras'),
    (['-p', 'providers:=[tpu]'], 'providers'),
    (['-p', 'max_pixels:=0'], 'max_pixels'),
    (['-p', 'input_transport:=h264'], 'input_transport'),
]


def test_invalid_parameters_name_the_parameter_and_exit_2():
    procs = [start_node(NODE, *args, name=f'bad_param_{i}')
             for i, (args, _) in enumerate(BAD_PARAMETERS)]
    for proc, (args, name) in zip(procs, BAD_PARAMETERS):
        out, _ = proc.communicate(timeout=90.0)
        assert proc.returncode == 2, (args, out)
        assert f"parameter '{name}'" in out, (args, out)
        assert 'Traceback' not in out and 'AttributeError' not in out, (args, out)
        assert len(out.strip().splitlines()) <= 3, out  # one clear line, not a wall


def _set(tester, proc, node_name, name, value):
    client = tester.create_client(SetParameters, f'/{node_name}/set_parameters')
    assert client.wait_for_service(timeout_sec=REPLY_TIMEOUT)
    kind = (ParameterType.PARAMETER_BOOL if isinstance(value, bool)
            else ParameterType.PARAMETER_STRING)
    param_value = (ParameterValue(type=kind, bool_value=value) if isinstance(value, bool)
                   else ParameterValue(type=kind, string_value=value))
    future = client.call_async(SetParameters.Request(
        parameters=[ParameterMsg(name=name, value=param_value)]))
    Harness(tester, proc, node_name).wait(future.done, what='set_parameters answered')
    return future.result().results[0]


def test_read_only_parameters_are_refused_and_publish_overlay_works_at_run_time(tester):
    name = 'vehicle_params'
    proc = start_node(NODE, *reliable_input('/image_raw'), name=name)
    try:
        h = Harness(tester, proc, name)
        pub = h.publisher('image_raw', Image)
        detections = h.collect('detections', Detection2DArray)
        overlays = h.collect('overlay', Image)
        rgb = data.chelsea()
        pub.publish(raw_frame(rgb, 1))
        h.wait(lambda: detections and overlays, what='detections and overlay of frame 1')
        assert overlays[-1].header.stamp.sec == 1

        refused = _set(tester, proc, name, 'input_transport', 'compressed')
        assert not refused.successful and 'read-only' in refused.reason.lower()
        assert _set(tester, proc, name, 'publish_overlay', False).successful
        pub.publish(raw_frame(rgb, 2))
        h.wait(lambda: detections[-1].header.stamp.sec == 2, what='detections of frame 2')
        h.spin_for(0.5)
        assert overlays[-1].header.stamp.sec == 1  # switched off: no overlay for frame 2
        assert _set(tester, proc, name, 'publish_overlay', True).successful
        pub.publish(raw_frame(rgb, 3))
        h.wait(lambda: overlays[-1].header.stamp.sec == 3, what='overlay back on for frame 3')
    finally:
        _finish(proc)


def test_shipped_parameters_file_under_a_namespace_runs_the_models(tester):
    """config/perception.yaml as shipped (providers: [cpu]) applies under PushRosNamespace."""
    name = 'vehicle_ns'
    proc = start_node(NODE, '-r', '__ns:=/front', '--params-file',
                      str(REPO / 'config' / 'perception.yaml'),
                      *reliable_input('/front/image_raw'), name=name)
    try:
        h = Harness(tester, proc, name)
        infos = []
        tester.create_subscription(LabelInfo, '/front/label_info', infos.append, LATCHED)
        detections = h.collect('/front/detections', Detection2DArray)
        masks = h.collect('/front/segmentation', Image)
        pub = h.publisher('/front/image_raw', Image)
        h.wait(lambda: infos, what='latched label_info')
        names = {str(c.class_id): c.class_name for c in infos[-1].class_map}
        assert names['0'] == 'background' and 'Person' in names.values()
        assert abs(infos[-1].threshold - 0.4) < 1e-6
        pub.publish(raw_frame(data.astronaut(), 5, 'cam_front'))
        h.wait(lambda: detections and masks, what='detections and mask of the astronaut')
        best = detections[-1].detections[0].results[0].hypothesis
        assert names[best.class_id] == 'Person'
        assert masks[-1].header.stamp.sec == 5 and masks[-1].width == 512
    finally:
        out = _finish(proc)
    assert 'models: ssd_mobilenetv2_oidv4, selfie_segmentation' in out


def _spin_publishing(h, pub, make, seconds, rate_hz=20.0, start=0):
    """Publish make(i) at rate_hz for `seconds` while spinning; return the next index."""
    index = start
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() >= next_at:
            pub.publish(make(index))
            index += 1
            next_at += 1.0 / rate_hz
        rclpy.spin_once(h.tester, timeout_sec=0.01)
    return index


def test_two_cameras_share_one_batch_and_a_silent_one_stalls_nothing(tester):
    name = 'vehicle_cams'
    proc = start_node(NODE, '-p', 'cameras:=[front, left]', '-p',
                      'left.input_transport:=compressed', '-p', 'models:=[ssd_mobilenetv2_oidv4]',
                      '-p', 'batch_timeout_ms:=1000.0', '-p', 'diagnostics_period_s:=0.2',
                      *reliable_input('/front/image_raw', '/left/image_raw/compressed'),
                      name=name)
    try:
        h = Harness(tester, proc, name)
        # image_transport naming: the compressed camera listens on image_raw/compressed.
        front_pub = h.publisher('/front/image_raw', Image)
        left_pub = h.publisher('/left/image_raw/compressed', CompressedImage)
        assert tester.count_subscribers('/left/image_raw') == 0
        front = h.collect('/front/detections', Detection2DArray)
        left = h.collect('/left/detections', Detection2DArray)
        infos = []
        tester.create_subscription(LabelInfo, '/left/label_info', infos.append, LATCHED)
        h.wait(lambda: infos, what='left label_info')
        names = {str(c.class_id): c.class_name for c in infos[-1].class_map}

        # First frames: no camera is known to be active yet, so nothing waits for the other.
        # Once both stream (10 Hz here), frames arriving together run as one batch.
        astronaut, chelsea = data.astronaut(), data.chelsea()
        chelsea_jpeg = jpeg_frame(chelsea, 0).data
        pairs = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            front_pub.publish(raw_frame(astronaut, 100 + pairs, 'cam_front'))
            left_pub.publish(jpeg_frame(None, 200 + pairs, 'cam_left', data=chelsea_jpeg))
            pairs += 1
            h.spin_for(0.1)
        h.wait(lambda: front and left and front[-1].header.stamp.sec == 99 + pairs
               and left[-1].header.stamp.sec == 199 + pairs, what='the last pair answered')
        assert front[-1].header.frame_id == 'cam_front' and left[-1].header.frame_id == 'cam_left'
        assert names[front[-1].detections[0].results[0].hypothesis.class_id] == 'Person'
        assert names[left[-1].detections[0].results[0].hypothesis.class_id] == 'Cat'
        # Per-camera accounting: every frame processed or (replaced by a newer one) dropped.
        done = {}
        for camera in ('front', 'left'):
            status = h.wait_status(camera, lambda v: int(v['frames_processed'])
                                   + int(v['frames_dropped']) == pairs)
            assert status['frames_received'] == str(pairs) and status['frames_failed'] == '0'
            done[camera] = int(status['frames_processed'])
        pipeline = h.wait_status('pipeline', lambda v: v.get('frames') == str(sum(
            done.values())))
        assert pipeline['largest_batch'] == '2'
        assert int(pipeline['batches']) < sum(done.values())  # pairs ran as one batch
        front_done = done['front']

        # The left camera falls silent: front frames still go through, alone, without waiting
        # for it beyond the window (1 s), and once it counts as gone (1 s) not at all.
        for stamp in range(12, 15):
            front_pub.publish(raw_frame(astronaut, stamp, 'cam_front'))
            h.wait(lambda s=stamp: front[-1].header.stamp.sec == s, what=f'front {stamp}')
        status = h.wait_status('front', lambda v: v.get('frames_processed') == str(front_done + 3))
        assert float(status['latency_ms.queue.p99']) < 1500.0
        assert float(status['latency_ms.queue.p50']) < 500.0
        assert h.status('left')['frames_received'] == str(pairs)
        assert 'latency_ms.inference.ssd_mobilenetv2_oidv4.p50' in status
    finally:
        _finish(proc)


def test_diagnostics_follow_the_camera_stopping_failing_and_resuming(tester):
    name = 'vehicle_diag'
    proc = start_node(NODE, '-p', 'diagnostics_period_s:=0.2', '-p', 'stale_after_s:=1.0',
                      *reliable_input('/image_raw'), name=name)
    try:
        h = Harness(tester, proc, name)
        pub = h.publisher('image_raw', Image)
        small = np.full((48, 64, 3), 90, np.uint8)
        index = _spin_publishing(h, pub, lambda i: raw_frame(small, i), 1.5)
        running = h.wait_status('camera', lambda v: v['level'] == 'OK')
        assert float(running['input_rate_hz']) > 5.0

        # The camera stops: the rate decays to 0 and the status goes STALE.
        stale = h.wait_status('camera', lambda v: v['level'] == 'STALE'
                              and float(v['input_rate_hz']) == 0.0)
        assert 'no frame for' in stale['message']

        # One bad frame while streaming: WARN, then OK again once it is out of the window.
        bad = raw_frame(small, 999)
        bad.encoding = 'bayer_rggb16'
        pub.publish(bad)  # alone: a frame replaced before processing would count as dropped
        warned = h.wait_status('camera', lambda v: v['level'] == 'WARN')
        assert 'unsupported_encoding' in warned['message'] and warned['frames_failed'] == '1'
        _spin_publishing(h, pub, lambda i: raw_frame(small, i), 6.0, start=index)
        back = h.wait_status('camera', lambda v: v['level'] == 'OK')
        assert back['frames_failed'] == '1' and float(back['input_rate_hz']) > 5.0
    finally:
        _finish(proc)


def test_max_pixels_reaches_the_frame_validation(tester):
    name = 'vehicle_pixels'
    proc = start_node(NODE, '-p', 'max_pixels:=1000', '-p', 'diagnostics_period_s:=0.2',
                      *reliable_input('/image_raw'), name=name)
    try:
        h = Harness(tester, proc, name)
        pub = h.publisher('image_raw', Image)
        detections = h.collect('detections', Detection2DArray)
        pub.publish(raw_frame(np.zeros((48, 64, 3), np.uint8), 1))  # 3072 pixels: refused
        status = h.wait_status('camera', lambda v: v['frames_failed'] == '1')
        assert status['errors.image_too_large'] == '1' and 'max_pixels' in status['last_error']
        pub.publish(raw_frame(np.zeros((20, 40, 3), np.uint8), 2))  # 800 pixels: fine
        h.wait(lambda: detections and detections[-1].header.stamp.sec == 2, what='frame 2')
        assert [d.header.stamp.sec for d in detections] == [2]
    finally:
        _finish(proc)
