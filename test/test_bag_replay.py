"""Live replay over DDS: the sample bag through the running perception node, recorded, evaluated.

Each process is separate, as on a vehicle: perception_node with two cameras (raw Image on
/cam_front, JPEG CompressedImage on /cam_left), play_bag, record_outputs, and this test. The
recording must pass evaluate_bag against the checked-in golden outputs, and equal what
process_bag makes of the same bag offline. Budget: ~40 s on 2 cores (node start-up dominates).
"""

import os
import pathlib
import subprocess
import sys
import threading
import time

import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 (rclpy) is not installed for this Python')
pytest.importorskip('rosbags', reason='rosbags (bag I/O) is not installed for this Python')

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from bag_helpers import GOLDEN, make_sample  # noqa: E402
from ros_helpers import spin_until, start_node, stop_node  # noqa: E402
from dali_trt_ros.bags.io import bag_status, open_reader  # noqa: E402
from dali_trt_ros.tools import evaluate_bag, process_bag  # noqa: E402

STARTUP_TIMEOUT = 60.0  # >= 5 s: model loading + discovery on a loaded 2-core machine
# One node for both cameras, as on a vehicle: /cam_front/image_raw (raw) and
# /cam_left/image_raw/compressed, exactly the bag's topics (no remapping).
NODE_ARGS = ('-p', 'cameras:=[cam_front, cam_left]', '-p', 'cam_left.input_transport:=compressed',
             '-p', 'qos_overrides./cam_front/image_raw.subscription.reliability:=reliable',
             '-p',
             'qos_overrides./cam_left/image_raw/compressed.subscription.reliability:=reliable',
             '-p', 'models:=[ssd_mobilenetv2_oidv4, selfie_segmentation]',
             '-p', 'diagnostics_period_s:=0.5')


class Tool:
    """A bag tool in its own process, its output collected by a thread."""

    def __init__(self, module, *args):
        self.proc = subprocess.Popen([sys.executable, '-m', module, *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=dict(os.environ, PYTHONUNBUFFERED='1'))
        self.lines = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for_line(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(needle in line for line in self.lines):
                return True
            time.sleep(0.05)
        return any(needle in line for line in self.lines)

    def finish(self, timeout):
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return self.proc.returncode, ''.join(self.lines)

    def interrupt(self, timeout=30):
        self.proc.send_signal(2)
        return self.finish(timeout)


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp('replay') / 'sample')


@pytest.fixture(scope='module')
def live_recording(sample):
    """Replay the sample through the node (its own process); return the recorded bag."""
    output = sample.with_name('live')
    rclpy.init()
    watcher = rclpy.create_node('replay_watcher')
    node = start_node('dali_trt_ros.nodes.perception_node', *NODE_ARGS, name='perception_node')
    recorder = None
    try:
        for ns in ('/cam_front', '/cam_left'):
            assert spin_until(watcher, lambda: watcher.count_publishers(f'{ns}/detections') > 0,
                              STARTUP_TIMEOUT, node), f'node did not start: {stop_node(node)}'
        recorder = Tool('dali_trt_ros.tools.record_outputs', '-o', output, '--cameras',
                        '/cam_front/image_raw', '/cam_left/image_raw/compressed')
        assert recorder.wait_for_line('recording 11 topics', STARTUP_TIMEOUT), recorder.lines
        player = Tool('dali_trt_ros.tools.play_bag', sample, '--lockstep', '--ack-timeout', 20,
                      '--subscribers', 2)  # the node and the recorder, both matched
        code, out = player.finish(timeout=180)
        assert code == 0, out
        assert 'published 90 messages' in out and 'unanswered frames 0' in out, out
        code, out = recorder.interrupt()
        assert code == 0, out
    finally:
        if recorder is not None and recorder.proc.poll() is None:
            recorder.proc.kill()
        node_code, node_out = stop_node(node)
        watcher.destroy_node()
        rclpy.shutdown()
    assert node_code == 0, node_out  # the node stopped cleanly on Ctrl-C
    return output


def test_live_replay_passes_evaluate_bag_against_golden(live_recording, sample, tmp_path):
    assert bag_status(live_recording)[0] == 'complete'
    report = tmp_path / 'report'
    code = evaluate_bag.main([str(live_recording), str(GOLDEN), '--report-dir', str(report),
                              '--min-coverage', '1', '--min-f1', '0.95', '--min-mask-iou',
                              '0.95', '--inputs', str(sample), '--overlays', '2'])
    text = (report / 'report.md').read_text()
    assert code == 0, text
    # Latency was measured (input arrivals were recorded) and plotted; the nodes' counters too.
    assert (report / 'latency_hist.png').exists() and (report / 'latency_timeline.png').exists()
    assert '## Latency' in text and 'Not recorded' not in text
    assert 'frames_processed=45' in text and 'frames_failed=0' in text


def test_process_bag_gives_the_same_detections_per_frame_as_the_live_node(
        live_recording, sample, tmp_path):
    offline = tmp_path / 'offline'
    assert process_bag.main([str(sample), '-o', str(offline), '--no-progress']) == 0
    code = evaluate_bag.main([str(offline), str(live_recording), '--report-dir',
                              str(tmp_path / 'report'), '--iou', '0.999', '--max-score-diff',
                              '1e-5', '--min-f1', '1', '--min-coverage', '1',
                              '--min-mask-iou', '0.999'])
    assert code == 0, (tmp_path / 'report' / 'report.md').read_text()


def test_play_bag_sends_the_recorded_bytes_remapped_with_a_clock(sample):
    rclpy.init()
    node = rclpy.create_node('replay_listener')
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image
    received, clocks = [], []
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, '/replay/front', received.append, qos, raw=True)
    node.create_subscription(Clock, '/clock', clocks.append, 10)
    player = Tool('dali_trt_ros.tools.play_bag', sample, '--topics', '/cam_front/image_raw',
                  '--remap', '/cam_front/image_raw:=/replay/front', '--rate', '5', '--clock',
                  '50')
    try:
        # Not bound to the player's life: it may exit (after the acks) before we spin.
        assert spin_until(node, lambda: len(received) == 45, 60.0), player.lines
        code, out = player.finish(timeout=30)
        assert code == 0, out
        assert 'remap rule' not in out  # FROM:=TO is the tool's option, not an rcl rule
    finally:
        if player.proc.poll() is None:
            player.proc.kill()
        node.destroy_node()
        rclpy.shutdown()
    reader = open_reader(sample)
    try:
        expected = [bytes(d) for c, _, d in reader.messages()
                    if c.topic == '/cam_front/image_raw']
    finally:
        reader.close()
    assert [bytes(r) for r in received] == expected  # unchanged bytes, in order
    assert clocks, 'no /clock messages'
    times = [c.clock.sec * 10**9 + c.clock.nanosec for c in clocks]
    assert times == sorted(times)
    assert 1_763_985_600 * 10**9 <= times[0] and times[-1] <= 1_763_985_602 * 10**9


def test_play_bag_and_record_outputs_reject_bad_arguments(tmp_path):
    missing = tmp_path / 'missing'
    for module, args, needle in (
            ('play_bag', [missing], str(missing)),
            ('play_bag', [tmp_path, '--remap', 'a:=b'], 'remap'),
            ('record_outputs', ['-o', tmp_path / 'x', '--no-diagnostics'], 'nothing to record'),
            ('record_outputs', ['-o', tmp_path / 'y', '--topics', '/t:no_pkg/msg/T'],
             'no_pkg/msg/T is not available')):
        result = subprocess.run([sys.executable, '-m', f'dali_trt_ros.tools.{module}',
                                 *map(str, args)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and 'Traceback' not in result.stderr


def test_every_bag_tool_has_help():
    for tool in ('make_bag', 'play_bag', 'record_outputs', 'process_bag', 'evaluate_bag'):
        result = subprocess.run([sys.executable, '-m', f'dali_trt_ros.tools.{tool}', '--help'],
                                capture_output=True, text=True, timeout=60,
                                cwd=pathlib.Path('/'))
        assert result.returncode == 0 and 'usage:' in result.stdout, tool
