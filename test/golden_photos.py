"""The golden numbers of the real models on the test photos: test/golden/photos.json, read once.

Every test that checks what the real detector or person segmenter makes of a photo takes its
expectation from here, so a re-recording changes one file.
"""

import json
import pathlib

GOLDEN = json.loads((pathlib.Path(__file__).parent / 'golden' / 'photos.json').read_text())
SSD, SELFIE = 'ssd_mobilenetv2_oidv4', 'selfie_segmentation'
TOLERANCES = GOLDEN['tolerances']
SAME_PATH_TOLERANCES = GOLDEN['tolerances_same_path']
DETECTOR_PHOTOS = sorted(GOLDEN[SSD])


def detection(photo):
    """Return the best detection on ``photo``: {'label', 'score', 'box'} (x1, y1, x2, y2)."""
    return GOLDEN[SSD][photo]


def box_center_and_size(photo):
    """Return (center x, center y, width, height) of the golden box, as vision_msgs has it."""
    x1, y1, x2, y2 = detection(photo)['box']
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def person_fraction_band(photo='astronaut'):
    """Return (low, high) of the share of person pixels the segmenter finds on ``photo``."""
    low, high = GOLDEN[SELFIE][photo]['fraction_band']
    return low, high
