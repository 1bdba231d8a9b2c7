"""perception_node under faults, over DDS with the node in its own process.

Shutdown while frames stream and with a slow frame in flight (SIGINT, SIGTERM, a second
signal), a model raising at run time, a publisher with incompatible QoS, an overlay subscriber
coming and going, frames lost in transport, and EXIF-oriented JPEGs with and without an overlay
subscriber.
"""

import io
import signal
import threading
import time

import cv2
import numpy as np
import pytest
from skimage import data

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray, LabelInfo  # noqa: E402

import fault_models  # noqa: E402
from node_harness import (BEST_EFFORT, Harness, jpeg_frame, LATCHED, raw_frame,  # noqa: E402
                          reliable_input)
from ros_helpers import (assert_clean_output, start_node, stop_node,  # noqa: E402
                         ros_tester_node)

NODE = 'dali_trt_ros.nodes.perception_node'
SSD = 'ssd_mobilenetv2_oidv4'


@pytest.fixture
def tester():
    with ros_tester_node('fault_tester') as node:
        yield node


def _stop_timed(proc, signals=(signal.SIGINT,), gap_s=0.2):
    """Send the signals (gap_s apart); return (exit code, seconds to exit, output)."""
    start = time.monotonic()
    for index, signum in enumerate(signals):
        if index:
            time.sleep(gap_s)
        if proc.poll() is None:
            proc.send_signal(signum)
    out, _ = proc.communicate(timeout=30.0)
    return proc.returncode, time.monotonic() - start, out


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_stop_while_frames_stream_is_quick_and_clean(tester, signum):
    name = f'fault_stream_{signum.name.lower()}'
    proc = start_node(NODE, '-p', f'models:=[{SSD}]', name=name)
    h = Harness(tester, proc, name)
    pub = h.publisher('image_raw', Image, BEST_EFFORT)
    detections = h.collect('detections', Detection2DArray)
    frame = raw_frame(data.astronaut(), 1)
    streaming = threading.Event()
    streaming.set()

    def stream():  # 30 Hz, also while the node shuts down
        while streaming.is_set():
            pub.publish(frame)
            time.sleep(1 / 30)
    thread = threading.Thread(target=stream)
    thread.start()
    try:
        h.wait(lambda: len(detections) >= 3, what='detections while streaming')
        code, seconds, out = _stop_timed(proc, (signum,))
    finally:
        streaming.clear()
        thread.join()
    assert code == 0, out
    assert seconds < 2.0, f'took {seconds:.2f} s to stop:\n{out}'
    assert_clean_output(out)
    assert 'models closed: engines and their memory released' in out


def test_slow_frame_in_flight_and_a_second_signal(tester, tmp_path):
    slow = fault_models.write_model(tmp_path, 'slow')
    name = 'fault_slow'
    proc = start_node(NODE, '-p', f'models:=[{slow}]', '-p', 'diagnostics_period_s:=0.1',
                      *reliable_input('/image_raw'), name=name)
    h = Harness(tester, proc, name)
    pub = h.publisher('image_raw', Image)
    pub.publish(raw_frame(data.astronaut(), 1))
    # Received and not yet processed: the frame is inside the slow model now.
    h.wait_status('camera', lambda v: v['frames_received'] == '1'
                  and v['frames_processed'] == '0')
    code, seconds, out = _stop_timed(proc, (signal.SIGINT, signal.SIGINT))
    assert code == 0, out
    assert seconds < 2.0, f'took {seconds:.2f} s to stop:\n{out}'
    assert_clean_output(out)
    assert ('models closed' in out) or ('still being processed' in out), out


def test_a_model_raising_at_run_time_spares_the_other_model_and_cameras(tester, tmp_path):
    broken = fault_models.write_model(tmp_path, 'broken')
    name = 'fault_model'
    proc = start_node(NODE, '-p', f'models:=[{SSD}, {broken}]', '-p', 'cameras:=[front, left]',
                      '-p', 'diagnostics_period_s:=0.2',
                      *reliable_input('/front/image_raw', '/left/image_raw'), name=name)
    try:
        h = Harness(tester, proc, name)
        infos = []
        tester.create_subscription(LabelInfo, '/front/label_info', infos.append, LATCHED)
        masks = []
        tester.create_subscription(Image, '/front/segmentation', masks.append, 10)
        outputs = {}
        for camera, photo in (('front', data.astronaut()), ('left', data.chelsea())):
            outputs[camera] = h.collect(f'/{camera}/detections', Detection2DArray)
            pub = h.publisher(f'/{camera}/image_raw', Image)
            for stamp in (1, 2):
                pub.publish(raw_frame(photo, stamp, camera))
                h.wait(lambda c=camera, s=stamp: outputs[c] and
                       outputs[c][-1].header.stamp.sec == s, what=f'{camera} detections {stamp}')
        h.wait(lambda: infos, what='label_info')
        names = {str(c.class_id): c.class_name for c in infos[-1].class_map}
        assert names[outputs['front'][-1].detections[0].results[0].hypothesis.class_id] == \
            'Person'
        assert names[outputs['left'][-1].detections[0].results[0].hypothesis.class_id] == 'Cat'
        model = h.wait_status('model broken_segmenter', lambda v: v['frames_failed'] == '4')
        assert model['level'] == 'WARN' and model['errors.inference_failed'] == '4'
        assert 'Gather' in model['last_error'] and len(model['last_error']) <= 203
        ssd = h.status(f'model {SSD}')
        assert ssd['level'] == 'OK' and ssd['frames_run'] == '4'
        for camera in ('front', 'left'):
            status = h.status(camera)
            assert status['frames_processed'] == '2' and status['frames_failed'] == '0'
        assert masks == []  # the broken model's output is not published, not faked
    finally:
        code, out = stop_node(proc)
    assert code == 0, out
    assert 'Traceback' not in out, out


def test_an_incompatible_qos_publisher_gets_one_clear_warning(tester):
    name = 'fault_qos'
    proc = start_node(NODE, '-p', 'diagnostics_period_s:=0.2', *reliable_input('/image_raw'),
                      name=name)
    try:
        h = Harness(tester, proc, name)
        detections = h.collect('detections', Detection2DArray)
        # Best-effort publishers cannot feed a reliable subscription.
        bad = [tester.create_publisher(Image, 'image_raw', BEST_EFFORT) for _ in range(2)]
        status = h.wait_status('camera', lambda v: int(v.get('incompatible_qos_events', 0)) >= 2)
        assert status['level'] == 'WARN'
        for publisher in bad:
            publisher.publish(raw_frame(np.zeros((8, 8, 3), np.uint8), 1, 'qos_test'))
        good = h.publisher('image_raw', Image)  # a compatible one is served as usual
        good.publish(raw_frame(np.zeros((8, 8, 3), np.uint8), 2, 'qos_test'))
        mine = lambda: [d.header.stamp.sec for d in detections  # noqa: E731
                        if d.header.frame_id == 'qos_test']
        h.wait(lambda: 2 in mine(), what='frame 2')
        h.spin_for(0.5)
        assert mine() == [2]
    finally:
        code, out = stop_node(proc)
    assert code == 0, out
    warnings = [line for line in out.splitlines() if 'incompatible' in line.lower()]
    assert len(warnings) == 1, out
    assert 'RELIABILITY' in warnings[0] and '/image_raw' in warnings[0]


def test_an_overlay_subscriber_appearing_and_leaving(tester):
    name = 'fault_overlay_sub'
    proc = start_node(NODE, '-p', 'diagnostics_period_s:=0.2', *reliable_input('/image_raw'),
                      name=name)
    try:
        h = Harness(tester, proc, name)
        pub = h.publisher('image_raw', Image)
        detections = h.collect('detections', Detection2DArray)
        rgb = data.coffee()
        stamp = 0
        for round_ in range(2):
            overlays = []
            sub = tester.create_subscription(Image, 'overlay', overlays.append, 10)
            for _ in range(3):
                stamp += 1
                pub.publish(raw_frame(rgb, stamp))
                h.wait(lambda s=stamp: detections and detections[-1].header.stamp.sec == s,
                       what=f'detections {stamp}')
            h.wait(lambda: overlays, what=f'overlays in round {round_}')
            assert overlays[-1].width == rgb.shape[1] and overlays[-1].encoding == 'rgb8'
            tester.destroy_subscription(sub)
            h.wait(lambda: tester.count_subscribers('overlay') == 0, what='subscriber gone')
            for _ in range(3):  # nobody listens: frames go on without an overlay
                stamp += 1
                pub.publish(raw_frame(rgb, stamp))
                h.wait(lambda s=stamp: detections[-1].header.stamp.sec == s,
                       what=f'detections {stamp}')
        status = h.wait_status('camera', lambda v: v['frames_processed'] == str(stamp))
        assert status['frames_failed'] == '0' and status['frames_dropped'] == '0'
    finally:
        code, out = stop_node(proc)
    assert code == 0, out
    assert_clean_output(out)


def test_frames_lost_in_transport_are_counted(tester):
    """4K frames flooded best-effort: the middleware's message-lost events are counted."""
    name = 'fault_lost'
    proc = start_node(NODE, '-p', 'diagnostics_period_s:=0.2', name=name)
    try:
        h = Harness(tester, proc, name)
        pub = h.publisher('image_raw', Image, BEST_EFFORT)
        frame = raw_frame(np.zeros((2160, 3840, 3), np.uint8), 0)
        published = 0
        for _ in range(5):  # bursts until some loss is reported (the first one always did)
            for _ in range(30):
                published += 1
                frame.header.stamp.sec = published
                pub.publish(frame)
            h.spin_for(1.0)
            if int(h.status('camera').get('frames_lost_in_transport', 0)) > 0:
                break

        def settled(v):
            received = int(v['frames_received'])
            return received == (int(v['frames_processed']) + int(v['frames_dropped'])
                                + int(v['frames_failed']))
        status = h.wait_status('camera', settled)
        lost, received = int(status['frames_lost_in_transport']), int(status['frames_received'])
        assert lost > 0, status
        assert received + lost <= published, status
        assert status['level'] in ('WARN', 'OK')
    finally:
        code, out = stop_node(proc)
    assert code == 0, out


def _exif_oriented_jpeg(rgb, orientation=6):
    from PIL import Image as PilImage
    exif = PilImage.Exif()
    exif[0x0112] = orientation  # "rotate 90 CW to display": viewers would turn it
    buffer = io.BytesIO()
    PilImage.fromarray(rgb).save(buffer, 'JPEG', quality=95, exif=exif)
    return buffer.getvalue()


def test_exif_oriented_jpeg_keeps_detections_and_the_overlay_aligned(tester):
    name = 'fault_exif'
    proc = start_node(NODE, '-p', 'input_transport:=compressed', '-p', f'models:=[{SSD}]',
                      *reliable_input('/image_raw/compressed'), name=name)
    try:
        h = Harness(tester, proc, name)
        from sensor_msgs.msg import CompressedImage
        pub = h.publisher('image_raw/compressed', CompressedImage)
        detections = h.collect('detections', Detection2DArray)
        rgb = data.astronaut()  # square: a rotated overlay would still have the right size
        jpeg = _exif_oriented_jpeg(rgb)
        stored = cv2.imdecode(np.frombuffer(jpeg, np.uint8),
                              cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)[:, :, ::-1]
        rotated = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        assert not np.array_equal(stored, rotated)  # the tag really turns the image

        def person_box(stamp):
            out = detections[-1]
            assert out.header.stamp.sec == stamp and out.detections, f'frame {stamp} lost'
            box = out.detections[0].bbox
            return box.center.position.x, box.center.position.y, box.size_x, box.size_y

        pub.publish(jpeg_frame(None, 1, data=jpeg))
        h.wait(lambda: detections, what='detections without overlay subscriber')
        alone = person_box(1)
        # The golden astronaut box (15.8, 14.6, 363.7, 509.7) in the stored pixel grid.
        assert abs(alone[0] - 189.7) < 10 and abs(alone[3] - 495) < 15

        overlays = h.collect('overlay', Image)
        pub.publish(jpeg_frame(None, 2, data=jpeg))
        h.wait(lambda: detections[-1].header.stamp.sec == 2 and overlays,
               what='detections and overlay with an overlay subscriber')
        assert person_box(2) == pytest.approx(alone, abs=0.01)
        overlay = np.frombuffer(overlays[-1].data, np.uint8).reshape(512, 512, 3)
        close = np.abs(overlay.astype(int) - stored).max(axis=2) <= 3
        turned = np.abs(overlay.astype(int) - rotated).max(axis=2) <= 3
        assert close.mean() > 0.9, close.mean()  # drawn on the stored pixels, boxes aside
        assert turned.mean() < 0.5, turned.mean()
        status = h.wait_status('camera', lambda v: v['frames_processed'] == '2')
        assert status['frames_failed'] == '0'
    finally:
        code, out = stop_node(proc)
    assert code == 0, out
    assert_clean_output(out)


def test_codec_warnings_reach_the_node_log_not_raw_stderr(tester):
    # A JPEG with damaged entropy data decodes with a libjpeg warning. Before the node forwarded
    # the package's Python logging, the codec router's line went to stderr through logging's
    # last-resort handler, without the node's name, rosout or the launch log.
    name = 'fault_codec_log'
    proc = start_node(NODE, '-p', f'models:=[{SSD}]', '-p', 'preprocess_device:=cpu',
                      *reliable_input('/image_raw/compressed'),
                      '-p', 'input_transport:=compressed', name=name)
    h = Harness(tester, proc, name)
    ok, encoded = cv2.imencode('.jpg', data.astronaut()[:256, :256, ::-1],
                               [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    jpeg = bytearray(encoded.tobytes())
    middle = len(jpeg) // 2
    jpeg[middle:middle + 200] = bytes(range(200))  # entropy data damaged: decodes with a warning
    from sensor_msgs.msg import CompressedImage
    pub = h.publisher('image_raw/compressed', CompressedImage)
    detections = h.collect('detections', Detection2DArray)
    msg = CompressedImage(format='jpeg', data=bytes(jpeg))
    for stamp in range(1, 4):  # one at a time: the node keeps only the newest frame
        msg.header.stamp.sec = stamp
        pub.publish(msg)
        h.wait(lambda: len(detections) >= stamp, what='an answer to a damaged JPEG frame')
    code, out = stop_node(proc)
    assert code == 0, out
    codec_lines = [line for line in out.splitlines() if 'codec warning' in line]
    assert codec_lines, out
    assert all(f'[{name}]' in line for line in codec_lines), codec_lines
    assert_clean_output(out)
