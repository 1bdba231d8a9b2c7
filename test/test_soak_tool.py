"""The soak tool's parts: topics, node command, hostile frames, accounting verdict, RSS figures.

The soak itself (node in its own process, DDS, minutes of frames) runs in test_soak.py.
"""

import subprocess
import sys

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image

from dali_trt_ros.errors import FrameError
from dali_trt_ros.preprocess.inputs import frame_from_message, prepare_frame
from dali_trt_ros.tools import soak


def test_help_describes_the_tool():
    out = subprocess.run([sys.executable, '-m', 'dali_trt_ros.tools.soak', '--help'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and '--cameras' in out.stdout and '--minutes' in out.stdout


def test_cameras_follow_the_node_topic_contract():
    one = soak.camera_plan(soak.parse_args(['--cameras', '1']))
    assert [(c.topic, c.transport) for c in one] == [('/soak/image_raw', 'raw')]
    three = soak.camera_plan(soak.parse_args(['--cameras', '3', '--namespace', '/car']))
    assert [c.topic for c in three] == ['/car/cam0/image_raw',
                                        '/car/cam1/image_raw/compressed', '/car/cam2/image_raw']
    command = soak.node_command(soak.parse_args(['--cameras', '3', '--node-arg',
                                                 '-p max_pixels:=100']), three)
    assert 'cameras:=[cam0,cam1,cam2]' in command
    assert 'cam1.input_transport:=compressed' in command
    assert 'models:=[ssd_mobilenetv2_oidv4]' in command
    assert command[-2:] == ['-p', 'max_pixels:=100']


def test_stamps_are_written_into_serialized_frames():
    [data] = soak.serialize_all([CompressedImage(format='jpeg')])
    msg = deserialize_message(soak.stamped(data, 1_700_000_123_456_789_012), CompressedImage)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_123, 456_789_012)
    assert msg.format == 'jpeg'


EXPECTED_OUTCOME = {  # hostile kind -> outcome of the header checks (None: left to the decoder)
    'short_data': 'malformed_frame', 'step_too_small': 'malformed_frame',
    'unsupported_encoding': 'unsupported_encoding', 'huge_encoding': 'unsupported_encoding',
    'declared_16384x16384': 'image_too_large', 'zero_size': 'malformed_frame',
    'huge_frame_id': None, 'corrupt_jpeg_data': None, 'broken_jpeg_tables': None,
    'truncated_jpeg': 'corrupt_image', 'jpeg_bomb': 'image_too_large',
    'png_bomb': 'image_too_large', 'png_16bit': 'unsupported_pixel_format',
    'random_bytes': 'corrupt_image', 'huge_format': None,
}


@pytest.mark.parametrize('transport', ['raw', 'compressed'])
def test_hostile_frames_are_what_they_claim(transport):
    rgb = soak.photos(64, 48, count=1)[0]
    frames = soak.hostile_messages(transport, rgb, np.random.default_rng(0), mutated=8)
    kinds = [kind for kind, _ in frames]
    assert kinds.count('mutated_jpeg') == (8 if transport == 'compressed' else 0)
    for kind, msg in frames:
        assert isinstance(msg, Image if transport == 'raw' else CompressedImage)
        if kind == 'mutated_jpeg':
            continue  # random: any outcome
        try:
            prepare_frame(frame_from_message(msg))
            outcome = None
        except FrameError as error:
            outcome = error.reason
        assert outcome == EXPECTED_OUTCOME[kind], kind
    serialized = soak.serialize_all([msg for _, msg in frames])
    assert max(len(data) for data in serialized) > 2**20  # the 1 MB strings are really sent


def _figures(**row_changes):
    row = dict(camera='cam0', pushed=100, received=90, processed=70, dropped=15, failed=5,
               lost_in_transport=10, undelivered=10)
    row.update(row_changes)
    return {'cameras': [row], 'node_alive': True, 'node_tracebacks': 0, 'raw_codec_lines': 0,
            'rss': {'rss_growth_after_warmup': 0.01, 'rss_peak_above_median': 0.2,
                    'rss_peak_after_warmup_mb': 360.0}, 'diagnostics_drained': True}


def test_verdict_passes_balanced_figures_and_names_each_failure():
    assert soak.verdict(_figures(), 0.05) == []
    assert 'received 90 != processed + dropped + failed = 89' in \
        soak.verdict(_figures(failed=4), 0.05)[0]
    assert 'counted 11 lost but only 10' in soak.verdict(_figures(lost_in_transport=11), 0.05)[0]
    assert 'received none' in soak.verdict(
        _figures(received=0, processed=0, dropped=0, failed=0, undelivered=100), 0.05)[0]
    grown = _figures()
    grown['rss']['rss_growth_after_warmup'] = 0.06
    assert 'RSS grew 6.0%' in soak.verdict(grown, 0.05)[0]
    spiked = _figures()
    spiked['rss'].update(rss_peak_above_median=5.0, rss_peak_after_warmup_mb=1800.0)
    assert 'peaked at 1800 MB, 500% above' in soak.verdict(spiked, 0.05)[0]
    dead = _figures()
    dead.update(node_alive=False, node_tracebacks=1, raw_codec_lines=3)
    assert len(soak.verdict(dead, 0.05)) == 3


def test_rss_growth_compares_quarters_after_warm_up():
    mb = 2**20
    samples = [(t, (200 + t) * mb) for t in range(10)]  # warm-up: ignored
    samples += [(t, 300 * mb) for t in range(10, 30)]  # first quarter after warm-up
    samples += [(t, (300 + (t % 2) * 80) * mb) for t in range(30, 70)]  # frames in flight
    samples += [(t, 306 * mb) for t in range(70, 90)]  # last quarter
    figures = soak.rss_figures(samples, warmup_s=10)
    assert figures['rss_start_mb'] == 200 and figures['rss_after_warmup_mb'] == 300
    assert figures['rss_end_mb'] == 306
    assert figures['rss_growth_after_warmup'] == pytest.approx(0.02)
    assert figures['rss_peak_after_warmup_mb'] == 380
    # The soak with the pixel budget lifted: a decoded bomb spiked the node to 1.8 GB.
    spike = [(t, 300 * mb) for t in range(60)]
    spike[30] = (30, 1800 * mb)
    assert soak.rss_figures(spike, warmup_s=10)['rss_peak_above_median'] == pytest.approx(5.0)
