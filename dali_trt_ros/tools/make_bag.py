"""make_bag: write a camera-like rosbag2 sequence (30 Hz pans and zooms across real photos).

Photos come from scikit-image (astronaut, chelsea, coffee, motorcycle, rocket); each is shown
for a few seconds while the view slides and zooms, so consecutive frames differ. Cameras are
TOPIC[:ENCODING[:WxH]] with ENCODING rgb8, bgr8 (sensor_msgs/Image) or jpeg
(sensor_msgs/CompressedImage on a .../compressed topic). Storage mcap (rosbag2's default) or
sqlite3; `ros2 bag info/play` and rosbags both read the result.
"""

import argparse
import sys

from dali_trt_ros.errors import PerceptionError


def build_parser():
    """Command-line interface of make_bag."""
    from dali_trt_ros.bags.synth import DEFAULT_CAMERAS, PHOTOS, SAMPLE_PHOTOS
    parser = argparse.ArgumentParser(
        prog='make_bag', description=__doc__.splitlines()[0].split(': ', 1)[1],
        epilog='example: make_bag sample_bag --sample  (the CI sample: 3 photos, 0.5 s each)')
    parser.add_argument('output', help='rosbag2 folder to create')
    parser.add_argument('--camera', action='append', dest='cameras', metavar='TOPIC[:ENC[:WxH]]',
                        help=f'camera (repeatable); default: {" ".join(DEFAULT_CAMERAS)}')
    parser.add_argument('--photos', default=','.join(PHOTOS),
                        help=f'comma list from {",".join(PHOTOS)} (default: all)')
    parser.add_argument('--seconds-per-photo', type=float, default=2.0,
                        help='clip length per photo (default 2.0)')
    parser.add_argument('--rate', type=float, default=30.0, help='frame rate in Hz (default 30)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--sample', action='store_true',
                        help=f'the test sample: photos {",".join(SAMPLE_PHOTOS)}, 0.5 s each')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    return parser


def main(argv=None):
    """Write the bag; exit 2 with a message on invalid arguments."""
    args = build_parser().parse_args(argv)
    from dali_trt_ros.bags.synth import DEFAULT_CAMERAS, make_bag, SAMPLE_PHOTOS
    photos = SAMPLE_PHOTOS if args.sample else tuple(p for p in args.photos.split(',') if p)
    seconds = 0.5 if args.sample else args.seconds_per_photo
    try:
        counts = make_bag(args.output, cameras=args.cameras or DEFAULT_CAMERAS, photos=photos,
                          seconds_per_photo=seconds, rate_hz=args.rate, storage=args.storage,
                          overwrite=args.overwrite)
    except PerceptionError as error:
        print(f'make_bag: {error}', file=sys.stderr)
        return 2
    for topic, count in counts.items():
        print(f'{topic}: {count} messages')
    print(f'wrote {args.output} ({args.storage})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
