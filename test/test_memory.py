"""Freed frame-sized buffers go back to the system once the mmap threshold is fixed.

Each case runs in a fresh process: glibc's allocator state is per process and never resets.
"""

import os
import subprocess
import sys

import pytest

RETAIN = r'''
import sys
import numpy as np
import psutil
from dali_trt_ros.memory import return_freed_frames_to_os

if sys.argv[1] == 'fixed':
    assert return_freed_frames_to_os()
rss_mb = lambda: psutil.Process().memory_info().rss / 2**20
np.full(4 << 20, 1, np.uint8)  # one freed 4 MB buffer raises glibc's dynamic threshold
base = rss_mb()
frames = [np.full(1 << 20, 1, np.uint8) for _ in range(200)]  # 200 frame-sized buffers
in_use = np.full(1 << 20, 1, np.uint8)  # one frame still in use, allocated last
del frames
print(rss_mb() - base)
'''


def _retained_mb(mode):
    out = subprocess.run([sys.executable, '-c', RETAIN, mode], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc allocator behaviour')
def test_freed_frames_stay_resident_by_default_and_are_returned_with_the_fixed_threshold():
    assert _retained_mb('dynamic') > 150  # what made the soak's RSS grow in steps
    assert _retained_mb('fixed') < 30
