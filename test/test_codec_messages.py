"""libjpeg/libpng warnings never reach stderr raw: counted, rate-limited, and logged once.

The decoding runs in a subprocess whose fd 2 the test captures: the codec libraries write
with fprintf(stderr), below anything Python could intercept.
"""

import json
import os
import subprocess
import sys

from dali_trt_ros.codec_messages import classify

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMES = 40

DECODE_CORRUPT_FRAMES = r'''
import json, logging, sys
import numpy as np
from skimage import data
from dali_trt_ros.tools import hostile_frames
from dali_trt_ros.preprocess import (DaliPreprocessor, EncodedFrame, InputSpec, OpenCVPreprocessor,
                                     PreprocessSpec)

logging.basicConfig(format='LOGGED %(name)s %(message)s')
frames = int(sys.argv[2])
jpeg = bytearray(hostile_frames.small_jpeg(data.astronaut()[:256, :256], 90))
middle = len(jpeg) // 2
jpeg[middle:middle + 200] = bytes(range(200))  # entropy data damaged: decodes with a warning
png = hostile_frames.pillow_png(data.astronaut()[:32, :32], 'RGB')
text_chunk = bytearray(hostile_frames.png_chunk(b'tEXt', b'Comment\x00hi'))
text_chunk[-1] ^= 0xFF  # bad CRC on an ancillary chunk: libpng warns and decodes
damaged = [EncodedFrame(bytes(jpeg)), EncodedFrame(png[:33] + bytes(text_chunk) + png[33:])]
spec = PreprocessSpec((InputSpec('x', 64, 64),), max_batch=2)
decoded = 0
for preprocessor in (OpenCVPreprocessor(spec), DaliPreprocessor(spec, device_id=None)):
    for _ in range(frames):
        result = preprocessor.run(damaged)
        decoded += len(result.frame_indices)
print('canary: a line of our own on stderr', file=sys.stderr, flush=True)
from dali_trt_ros.codec_messages import codec_message_counts
print(json.dumps(dict(decoded=decoded, counts=codec_message_counts())))
'''


def _run_decoder_subprocess():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(HERE), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', DECODE_CORRUPT_FRAMES, HERE, str(FRAMES)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr.splitlines()


def test_no_raw_codec_lines_reach_stderr_and_every_one_is_counted():
    report, stderr_lines = _run_decoder_subprocess()
    assert report['decoded'] == 2 * 2 * FRAMES  # warnings only: every frame still decodes
    raw = [line for line in stderr_lines if classify(line)]
    assert raw == [], raw[:5]
    # Each damaged frame makes its library warn at least once, on both decoding paths.
    assert report['counts'].get('libjpeg', 0) >= 2 * FRAMES, report
    assert report['counts'].get('libpng', 0) >= 2 * FRAMES, report
    logged = [line for line in stderr_lines if line.startswith('LOGGED dali_trt_ros.codec')]
    # Rate-limited: one line per library per 10 s window (the run takes a few seconds).
    assert 1 <= sum('libjpeg: Corrupt JPEG data' in line for line in logged) <= 2, logged
    assert 1 <= sum('libpng: libpng warning' in line for line in logged) <= 2, logged
    assert 'canary: a line of our own on stderr' in stderr_lines  # other output untouched


def test_codec_lines_are_recognised_and_others_are_not():
    codec = {
        'Corrupt JPEG data: 265 extraneous bytes before marker 0xd9': 'libjpeg',
        'Corrupt JPEG data: premature end of data segment': 'libjpeg',
        'Premature end of JPEG file': 'libjpeg',
        'Invalid SOS parameters for sequential JPEG': 'libjpeg',
        'libpng warning: tEXt: CRC error': 'libpng',
        'libpng error: IDAT: CRC error': 'libpng',
        '[ WARN:0@1.234] global grfmt_png.cpp:123 read_chunk chunk too large': 'opencv',
        '\x1b[0;31m[ERROR] \x1b[0m[jpeg_parser] Invalid marker': 'nvimgcodec',
        '[WARNING] [png_parser] Unexpected chunk': 'nvimgcodec',
    }
    for line, library in codec.items():
        assert classify(line) == library, line
    for line in ('[WARN] [1700000000.1] [perception_node]: frame skipped: Corrupt JPEG data',
                 '\x1b[31m[ERROR] [1700000000.123456789] [perception_node]: unexpected',
                 'LOGGED dali_trt_ros.codec libjpeg: Corrupt JPEG data: 3 extraneous bytes',
                 'Traceback (most recent call last):', ''):
        assert classify(line) is None, line
