"""CameraBatcher: frames of several cameras in one batch, no camera waits past the window."""

import threading
import time

from dali_trt_ros.camera_batcher import CameraBatcher
from dali_trt_ros.frame_stats import FrameStats


def _batcher(cameras, window_s):
    stats = [FrameStats() for _ in range(cameras)]
    return CameraBatcher(stats, window_s), stats


def test_one_camera_never_waits():
    batcher, _ = _batcher(1, window_s=10.0)
    batcher.put(0, 'a')
    start = time.monotonic()
    assert batcher.take_batch(timeout=1.0) == [(0, 'a')]
    assert time.monotonic() - start < 0.5


def test_frames_arriving_within_the_window_form_one_batch():
    batcher, _ = _batcher(3, window_s=2.0)
    for camera in range(3):  # all three cameras are active
        batcher.put(camera, f'warmup{camera}')
    assert len(batcher.take_batch(timeout=1.0)) == 3
    batcher.put(0, 'front')
    threading.Timer(0.05, batcher.put, args=(2, 'right')).start()
    threading.Timer(0.1, batcher.put, args=(1, 'left')).start()
    start = time.monotonic()
    batch = batcher.take_batch(timeout=1.0)
    assert sorted(batch) == [(0, 'front'), (1, 'left'), (2, 'right')]
    assert time.monotonic() - start < 1.5  # returned when the last camera arrived


def test_a_silent_camera_is_waited_for_at_most_the_window():
    batcher, _ = _batcher(2, window_s=0.2)
    batcher.put(0, 'a0')
    batcher.put(1, 'b0')
    assert len(batcher.take_batch(timeout=1.0)) == 2
    batcher.put(0, 'a1')  # camera 1 is still "active" but sends nothing now
    start = time.monotonic()
    assert batcher.take_batch(timeout=1.0) == [(0, 'a1')]
    waited = time.monotonic() - start
    assert 0.15 <= waited < 0.6


def test_a_dead_camera_is_not_waited_for():
    batcher, _ = _batcher(2, window_s=5.0)
    batcher.active_s = 0.1
    batcher.put(1, 'b0')
    assert batcher.take_batch(timeout=1.0) == [(1, 'b0')]
    time.sleep(0.2)  # camera 1 falls silent for longer than active_s
    batcher.put(0, 'a0')
    start = time.monotonic()
    assert batcher.take_batch(timeout=1.0) == [(0, 'a0')]
    assert time.monotonic() - start < 1.0


def test_replaced_and_pending_frames_are_counted_per_camera():
    batcher, stats = _batcher(2, window_s=0.0)
    for frame in range(4):
        batcher.put(0, frame)
    batcher.put(1, 'x')
    assert sorted(batcher.take_batch(timeout=1.0)) == [(0, 3), (1, 'x')]
    batcher.put(1, 'y')
    batcher.close()
    assert stats[0].snapshot()['frames_dropped'] == 3
    assert stats[1].snapshot()['frames_dropped'] == 1
    assert batcher.take_batch(timeout=0.1) == []
