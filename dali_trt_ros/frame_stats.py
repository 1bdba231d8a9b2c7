"""Frame accounting for diagnostics: what came in, what went out, what was dropped and why.

Thread-safe: the subscription callback, the worker thread and the diagnostics timer all touch it.
Rates are time-windowed (they decay to 0 when a camera stops), latencies are kept per stage,
and every text that may come from an input (error messages quote formats and headers) is
bounded before it is stored.
"""

import collections
import threading
import time

import numpy as np

MAX_TEXT = 200  # characters of any input-derived text kept for diagnostics or logs


def bounded_text(text, limit=MAX_TEXT):
    """One line of at most `limit` characters (plus an ellipsis): safe to log or publish."""
    text = str(text)
    head = ' '.join(text[:limit * 2].split())
    if len(head) > limit or len(text) > limit * 2:
        return head[:limit] + '...'
    return head


def error_reason(error):
    """Return the counted reason of an error: its ``reason`` attribute, else its type name."""
    return getattr(error, 'reason', None) or type(error).__name__


class LatencyWindows:
    """The last N latencies of each named stage; p50/p99 on demand (not thread-safe)."""

    def __init__(self, size=300):
        self._size = size
        self._samples = {}

    def add(self, stage, milliseconds):
        """Record one latency of `stage` in milliseconds."""
        samples = self._samples.get(stage)
        if samples is None:
            samples = self._samples[stage] = collections.deque(maxlen=self._size)
        samples.append(float(milliseconds))

    def summary(self, prefix='latency_ms'):
        """{'<prefix>.<stage>.p50': ..., '<prefix>.<stage>.p99': ...} for every stage seen."""
        out = {}
        for stage in sorted(self._samples):
            values = np.fromiter(self._samples[stage], dtype=np.float64)
            if values.size:
                out[f'{prefix}.{stage}.p50'] = float(np.percentile(values, 50))
                out[f'{prefix}.{stage}.p99'] = float(np.percentile(values, 99))
        return out


class _EventWindow:
    """Times of recent events, for rates and "anything bad lately?" (not thread-safe)."""

    def __init__(self, window_s):
        self.window_s = window_s
        self._times = collections.deque()
        self._counts = collections.deque()

    def add(self, now, count=1):
        self._times.append(now)
        self._counts.append(count)
        self._prune(now)

    def _prune(self, now):
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
            self._counts.popleft()

    def count(self, now):
        self._prune(now)
        return sum(self._counts)

    def rate_hz(self, now):
        """Events per second over the window; decays to 0 when events stop."""
        self._prune(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0


class FrameStats:
    """Counters of one camera, time-windowed rates and per-stage latencies.

    ``received`` counts frames that reached the subscription callback; ``lost`` counts frames
    the middleware reported lost before that (DDS message-lost events). Every received frame
    ends up ``processed``, ``dropped`` (replaced by a newer one, or pending at shutdown) or
    ``failed`` (by reason).
    """

    def __init__(self, rate_window_s=5.0, latency_window=300, clock=time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.failed = 0
        self.lost = 0
        self.errors_by_reason = collections.Counter()
        self.last_error = ''
        self.last_arrival = None
        self._latencies = LatencyWindows(latency_window)
        self._arrivals = _EventWindow(rate_window_s)
        self._completions = _EventWindow(rate_window_s)
        self._problems = _EventWindow(rate_window_s)

    @property
    def rate_window_s(self):
        """Seconds over which rates and recent problems are computed."""
        return self._arrivals.window_s

    def _now(self, now):
        return self._clock() if now is None else now

    def on_received(self, now=None):
        """Count one frame taken from the topic."""
        with self._lock:
            now = self._now(now)
            self.received += 1
            self.last_arrival = now
            self._arrivals.add(now)

    def on_dropped(self, count=1):
        """Count frames discarded unprocessed (replaced by a newer one, or pending at stop)."""
        with self._lock:
            self.dropped += count

    def on_lost(self, count, now=None):
        """Count frames the middleware lost before they reached the callback."""
        if count <= 0:
            return
        with self._lock:
            self.lost += count
            self._problems.add(self._now(now), count)

    def on_processed(self, latency_s, stages_ms=None, now=None):
        """Count one frame whose outputs were published, with its latency (and its stages)."""
        with self._lock:
            self.processed += 1
            self._completions.add(self._now(now))
            self._latencies.add('total', latency_s * 1e3)
            for stage, milliseconds in (stages_ms or {}).items():
                self._latencies.add(stage, milliseconds)

    def on_failed(self, error, now=None):
        """Count one frame that could not be processed, by error reason."""
        reason = error_reason(error)
        with self._lock:
            self.failed += 1
            self.errors_by_reason[reason] += 1
            self.last_error = bounded_text(f'{reason}: {error}')
            self._problems.add(self._now(now))

    def on_error(self, error):
        """Count a problem that did not cost the frame (e.g. the overlay could not be drawn)."""
        reason = error_reason(error)
        with self._lock:
            self.errors_by_reason[reason] += 1
            self.last_error = bounded_text(f'{reason}: {error}')

    def snapshot(self, now=None):
        """Return a plain dict of the counters and latency/rate summaries."""
        with self._lock:
            now = self._now(now)
            snap = {
                'frames_received': self.received,
                'frames_processed': self.processed,
                'frames_dropped': self.dropped,
                'frames_failed': self.failed,
                'frames_lost_in_transport': self.lost,
                'last_error': self.last_error,
                'input_rate_hz': self._arrivals.rate_hz(now),
                'processed_rate_hz': self._completions.rate_hz(now),
                'recent_problems': self._problems.count(now),
            }
            if self.last_arrival is not None:
                snap['seconds_since_last_frame'] = now - self.last_arrival
            snap.update({f'errors.{k}': v for k, v in sorted(self.errors_by_reason.items())})
            snap.update(self._latencies.summary())
        return snap

    def health(self, snap, stale_after_s):
        """('ok' | 'warn' | 'stale', message) for a snapshot: what an operator should know now."""
        window = self.rate_window_s
        if snap['frames_received'] == 0:
            if snap['frames_lost_in_transport']:
                return 'warn', (f"all {snap['frames_lost_in_transport']} frames were lost in "
                                'transport (see the README: QoS and the DDS profile)')
            return 'warn', 'no frames received yet'
        silent = snap.get('seconds_since_last_frame', 0.0)
        if silent > stale_after_s:
            return 'stale', f'no frame for {silent:.1f} s'
        if snap['recent_problems']:
            return 'warn', (f"{snap['recent_problems']} frames failed or were lost in the last "
                            f"{window:g} s; last error: {snap['last_error'] or 'none'}")
        return 'ok', (f"processing {snap['processed_rate_hz']:.1f} of "
                      f"{snap['input_rate_hz']:.1f} frames/s")


class ModelStats:
    """Per-model accounting: frames run, failures by reason, inference/decode latencies."""

    def __init__(self, latency_window=300):
        self._lock = threading.Lock()
        self.frames = 0
        self.failures = 0
        self.errors_by_reason = collections.Counter()
        self.last_error = ''
        self._latencies = LatencyWindows(latency_window)

    def on_batch(self, timings_ms, model, frames, error=None):
        """Account one pipeline run of `model` over `frames` frames (failed if `error`)."""
        with self._lock:
            for stage in ('inference', 'postprocess'):
                value = timings_ms.get(f'{stage}.{model}')
                if value is not None:
                    self._latencies.add(stage, value)
            if error is None:
                self.frames += frames
                return
            reason = error_reason(error)
            self.failures += frames
            self.errors_by_reason[reason] += frames
            self.last_error = bounded_text(f'{reason}: {error}')

    def snapshot(self):
        """Return a plain dict of the counters and latency summaries."""
        with self._lock:
            snap = {'frames_run': self.frames, 'frames_failed': self.failures,
                    'last_error': self.last_error}
            snap.update({f'errors.{k}': v for k, v in sorted(self.errors_by_reason.items())})
            snap.update(self._latencies.summary())
        return snap


class LatestFrameSlot:
    """A one-deep mailbox between the subscription callback and the worker thread.

    A camera is real-time data: when inference falls behind, the newest frame is the one worth
    processing. A frame replaced before the worker took it is counted as dropped, never lost
    silently.
    """

    def __init__(self, stats):
        self._stats = stats
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item):
        """Offer a frame; a pending older frame is dropped (and counted)."""
        with self._cond:
            if self._item is not None:
                self._stats.on_dropped()
            self._item = item
            self._cond.notify()

    def take(self, timeout=None):
        """Wait for a frame; returns None on timeout or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self):
        """Wake the worker for shutdown; a frame still pending counts as dropped."""
        with self._cond:
            if self._item is not None:
                self._stats.on_dropped()
                self._item = None
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self):
        """Whether close() was called."""
        return self._closed
