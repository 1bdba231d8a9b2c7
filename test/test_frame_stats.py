"""Frame accounting: nothing is dropped without being counted."""

import threading

from dali_trt_ros.errors import CorruptImageError
from dali_trt_ros.frame_stats import bounded_text, FrameStats, LatestFrameSlot


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
        stats.on_processed(latency, {'preprocess': latency * 100})
    for t in (0.0, 0.1, 0.2):
        stats.on_received(now=t)
    snap = stats.snapshot(now=0.2)
    assert snap['frames_failed'] == 2
    assert snap['errors.corrupt_image'] == 1 and snap['errors.ValueError'] == 1
    assert snap['last_error'] == 'ValueError: bug'
    assert abs(snap['latency_ms.total.p50'] - 20.0) < 1e-9
    assert abs(snap['latency_ms.preprocess.p50'] - 2.0) < 1e-9
    assert abs(snap['input_rate_hz'] - 10.0) < 1e-9


def test_rates_decay_and_health_follows_the_camera():
    stats = FrameStats(rate_window_s=5.0)
    for i in range(60):  # 30 Hz for two seconds
        stats.on_received(now=i / 30)
        stats.on_processed(0.01, now=i / 30)
    snap = stats.snapshot(now=2.0)
    assert abs(snap['input_rate_hz'] - 30.0) < 1.0
    assert stats.health(snap, stale_after_s=2.0)[0] == 'ok'
    stats.on_failed(CorruptImageError('one bad frame'), now=2.0)
    assert stats.health(stats.snapshot(now=2.1), stale_after_s=2.0)[0] == 'warn'
    # The camera stops: the rate decays to 0 and the status goes STALE (not OK at 30 Hz).
    later = stats.snapshot(now=4.5)
    assert later['input_rate_hz'] < 15.0
    assert stats.health(later, stale_after_s=2.0)[0] == 'stale'
    gone = stats.snapshot(now=10.0)
    assert gone['input_rate_hz'] == 0.0 and gone['processed_rate_hz'] == 0.0
    # It comes back: OK again, and the old failure no longer holds the status at WARN.
    for i in range(30):
        stats.on_received(now=10.0 + i / 30)
        stats.on_processed(0.01, now=10.0 + i / 30)
    back = stats.snapshot(now=11.0)
    assert stats.health(back, stale_after_s=2.0)[0] == 'ok'
    assert back['frames_failed'] == 1  # counters never decay


def test_lost_frames_are_counted_and_warned():
    stats = FrameStats()
    stats.on_lost(3, now=1.0)
    snap = stats.snapshot(now=1.0)
    assert snap['frames_lost_in_transport'] == 3
    assert stats.health(snap, 2.0) == ('warn', 'all 3 frames were lost in transport (see the '
                                       'README: QoS and the DDS profile)')


def test_input_text_is_bounded():
    stats = FrameStats()
    stats.on_failed(CorruptImageError('format ' + 'x' * 5_000_000 + '\nsecond line'))
    last_error = stats.snapshot()['last_error']
    assert len(last_error) <= 210 and '\n' not in last_error
    assert bounded_text('a\n b') == 'a b'
