"""Shared fixtures for the bag tests: the deterministic sample bag and its checked-in golden."""

import pathlib

GOLDEN = pathlib.Path(__file__).parent / 'golden' / 'sample_bag.json'
SAMPLE_TOPICS = ('/cam_front/image_raw', '/cam_left/image_raw/compressed')


def make_sample(path, storage='mcap', **kwargs):
    """Write the CI sample bag (what `make_bag PATH --sample` writes) and return its path."""
    from dali_trt_ros.bags.synth import make_bag, SAMPLE_PHOTOS

    options = dict(photos=SAMPLE_PHOTOS, seconds_per_photo=0.5, storage=storage)
    options.update(kwargs)
    make_bag(path, **options)
    return pathlib.Path(path)
