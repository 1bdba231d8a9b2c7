"""Codec warnings (libjpeg, libpng, OpenCV) routed through rate-limited, counted logging.

libjpeg-turbo, libpng and DALI's nvImageCodec print warnings such as ``Corrupt JPEG data: 265
extraneous bytes before marker 0xd9`` or ``libpng warning: tEXt: CRC error`` straight to
stderr, from inside OpenCV's and DALI's decoders: one raw line per corrupt frame, bypassing every
logger. No decoder offers a switch for it, so while a decode runs, file descriptor 2 is pointed
at a pipe (``capture_codec_messages()``, a re-entrant, thread-safe window: a few microseconds).
A reader thread sorts what arrives: codec lines are counted by library and logged through
``logging.getLogger('dali_trt_ros.codec')`` at most once per ``interval_s`` per library (with
the number of similar lines since); anything else, e.g. another thread's log line written
during the window, is passed on to the real stderr unchanged.

Outside decode windows fd 2 is untouched, so a crash elsewhere still reaches the terminal.
"""

import atexit
import collections
import contextlib
import logging
import os
import queue
import re
import select
import threading
import time

LOG = logging.getLogger('dali_trt_ros.codec')

# The warning texts of libjpeg(-turbo) (jerror.h JWRN_*), libpng's default warning/error
# handlers, and OpenCV's own log lines from its image codecs.
CODEC_LINES = (
    ('libjpeg', re.compile(
        r'(Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|'
        r'Inconsistent progression sequence|Warning: unknown JFIF revision|'
        r'Unknown Adobe color transform code|Application transferred too many scanlines|'
        r'Warning: thumbnail image size does not match data length|'
        r'JFIF extension marker: type|Unsupported marker type|Bogus )')),
    ('libpng', re.compile(r'libpng (warning|error): ')),
    ('opencv', re.compile(r'\[ ?(WARN|ERROR|INFO):\d+@[\d.]+\] global '
                          r'(grfmt_\w+|loadsave|bitstrm|exif)\.cpp')),
    # DALI's nvImageCodec parsers: "[ERROR] [jpeg_parser] Invalid marker", maybe in colour.
    ('nvimgcodec', re.compile(r'(\x1b\[[0-9;]*m)?\[(ERROR|WARNING|WARN|INFO)\] '
                              r'(\x1b\[[0-9;]*m)?\[[a-z_]+\] ')),
)
PARTIAL_LINE_WAIT_S = 0.05


def classify(line):
    """Return the library that wrote ``line`` ('libjpeg', 'libpng', ...) or None."""
    for library, pattern in CODEC_LINES:
        if pattern.match(line):
            return library
    return None


class CodecMessageRouter:
    """Owns the pipe, the reader thread and the counters; use the module functions."""

    def __init__(self, interval_s=10.0, logger=None):
        self.interval_s = interval_s
        self.logger = logger or LOG
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self._last_logged = {}
        self._suppressed = collections.Counter()
        self._depth = 0
        self._restore_fd = None
        self._read_fd, self._write_fd = os.pipe()
        # Non-codec lines go where stderr pointed when the router was created.
        self._forward_fd = os.dup(2)
        # Logging happens on its own thread: a handler writing to fd 2 while a window is open
        # writes into the pipe, and only a reader that never blocks on it keeps it drained.
        self._log_queue = queue.Queue()
        for target, name in ((self._read_loop, 'codec_messages'),
                             (self._log_loop, 'codec_messages_log')):
            threading.Thread(target=target, name=name, daemon=True).start()

    @contextlib.contextmanager
    def capture(self):
        """Point fd 2 at the pipe for the duration (nested and concurrent use is fine)."""
        with self._lock:
            if self._depth == 0:
                self._restore_fd = os.dup(2)
                os.dup2(self._write_fd, 2)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    os.dup2(self._restore_fd, 2)
                    os.close(self._restore_fd)
                    self._restore_fd = None

    def counts(self):
        """Codec lines seen so far, by library."""
        with self._lock:
            return dict(self._counts)

    def _read_loop(self):
        pending = b''
        while True:
            ready, _, _ = select.select([self._read_fd], [], [],
                                        PARTIAL_LINE_WAIT_S if pending else None)
            if not ready:  # a line without its newline: pass it on as it is
                self._handle(pending)
                pending = b''
                continue
            chunk = os.read(self._read_fd, 65536)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b'\n')
            for line in lines:
                self._handle(line + b'\n')

    def _handle(self, raw):
        text = raw.decode('utf-8', 'replace')
        library = classify(text)
        if library is None:
            os.write(self._forward_fd, raw)
            return
        now = time.monotonic()
        with self._lock:
            self._counts[library] += 1
            last = self._last_logged.get(library)
            if last is not None and now - last < self.interval_s:
                self._suppressed[library] += 1
                return
            self._last_logged[library] = now
            similar, self._suppressed[library] = self._suppressed[library], 0
        more = f' ({similar} similar {library} messages in the last {self.interval_s:g} s)' \
            if similar else ''
        self._log_queue.put((library, text.strip()[:200], more))

    def _log_loop(self):
        while True:
            library, text, more = self._log_queue.get()
            try:
                self.logger.warning('%s: %s%s (codec warning: the image is damaged and may '
                                    'decode with grey or repeated blocks)', library, text, more)
            finally:
                self._log_queue.task_done()

    def flush(self, timeout=1.0):
        """Wait (up to ``timeout``) until every codec line read so far has been logged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            unread = select.select([self._read_fd], [], [], 0)[0]
            if not unread and not self._log_queue.unfinished_tasks:
                return
            time.sleep(0.005)


_ROUTER = None
_ROUTER_LOCK = threading.Lock()


def router():
    """Return the process-wide router, created on first use."""
    global _ROUTER
    with _ROUTER_LOCK:
        if _ROUTER is None:
            _ROUTER = CodecMessageRouter()
            atexit.register(_ROUTER.flush)  # the log thread is a daemon: finish its lines
        return _ROUTER


def capture_codec_messages():
    """Context manager around a decode call: codec lines become counted, rate-limited logs."""
    return router().capture()


def codec_message_counts():
    """{'libjpeg': n, 'libpng': m, ...}: codec lines seen in this process (for diagnostics)."""
    return router().counts() if _ROUTER is not None else {}
