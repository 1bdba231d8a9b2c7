"""Frame accounting: nothing is dropped without being counted."""

import threading

from dali_trt_ros.errors import CorruptImageError
from dali_trt_ros.frame_stats import FrameStats, LatestFrameSlot


def test_replaced_frames_are_counted_as_dropped():
    stats = FrameStats()
    slot = LatestFrameSlot(stats)
    for i in range(5):
        stats.on_received()
        slot.put(i)
    assert slot.take(timeout=0) == 4  # the newest frame wins
    assert stats.snapshot()['frames_dropped'] == 4
    slot.put(5)
    slot.close()  # shutdown with a frame pending: that one is dropped too
    assert stats.snapshot()['frames_dropped'] == 5
    assert slot.take(timeout=0) is None


def test_take_blocks_until_put_from_another_thread():
    slot = LatestFrameSlot(FrameStats())
    timer = threading.Timer(0.05, slot.put, args=('frame',))
    timer.start()
    assert slot.take(timeout=5.0) == 'frame'
    timer.join()


def test_snapshot_counts_errors_by_reason_and_latency():
    stats = FrameStats()
    stats.on_failed(CorruptImageError('truncated JPEG'))
    stats.on_failed(ValueError('bug'))
    for latency in (0.010, 0.020, 0.030):
        stats.on_processed(latency)
    for t in (0.0, 0.1, 0.2):
        stats.on_received(now=t)
    snap = stats.snapshot()
    assert snap['frames_failed'] == 2
    assert snap['errors.corrupt_image'] == 1 and snap['errors.ValueError'] == 1
    assert snap['last_error'] == 'ValueError: bug'
    assert abs(snap['latency_ms_p50'] - 20.0) < 1e-9
    assert abs(snap['input_rate_hz'] - 10.0) < 1e-9
