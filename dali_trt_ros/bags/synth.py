"""A camera-like sequence from real photos: slow pans and zooms across each one, at a fixed rate.

Deterministic: the same arguments give the same pixels, stamps and bytes (OpenCV's warp and JPEG
encoder, no randomness), so golden outputs recorded once stay valid.
"""

import dataclasses

import cv2
import numpy as np

from dali_trt_ros.bags import messages
from dali_trt_ros.bags.io import BagWriter, camera_namespace
from dali_trt_ros.bags.typestore import COMPRESSED_IMAGE, IMAGE
from dali_trt_ros.errors import ConfigError

# Photos shipped inside scikit-image (public domain / CC0), no download needed.
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'motorcycle', 'rocket')
SAMPLE_PHOTOS = ('astronaut', 'chelsea', 'coffee')
ENCODINGS = ('rgb8', 'bgr8', 'jpeg')
# 2025-11-24 12:00:00 UTC: a fixed "recording" start keeps stamps reproducible.
DEFAULT_START_NS = 1_763_985_600_000_000_000


# The files behind the photos in skimage/data, for machines without scikit-image
# (copy them into a folder and pass photo_folder).
PHOTO_FILES = {'astronaut': 'astronaut.png', 'chelsea': 'chelsea.png', 'coffee': 'coffee.png',
               'motorcycle': 'motorcycle_left.png', 'rocket': 'rocket.jpg'}


def load_photo(name, photo_folder=None):
    """RGB uint8 photo by name ('motorcycle' is the stereo pair's left view).

    From scikit-image, or from ``photo_folder`` holding the files of PHOTO_FILES.
    """
    if name not in PHOTOS:
        raise ConfigError(f'photo {name!r}: choose from {", ".join(PHOTOS)}')
    if photo_folder is not None:
        path = f'{photo_folder}/{PHOTO_FILES[name]}'
        bgr = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is None:
            raise ConfigError(f'photo {path} cannot be read')
        return bgr[:, :, ::-1]
    from skimage import data

    if name == 'motorcycle':
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    """One camera of the sequence: topic, encoding (rgb8, bgr8 or jpeg), size and frame_id."""

    topic: str
    encoding: str = 'bgr8'
    width: int = 640
    height: int = 480
    frame_id: str = ''
    jpeg_quality: int = 90

    @classmethod
    def parse(cls, text):
        """'TOPIC[:ENCODING[:WxH]]', e.g. '/cam_left/image_raw/compressed:jpeg:640x480'."""
        parts = text.split(':')
        if not parts[0].startswith('/') or len(parts) > 3:
            raise ConfigError(f'camera {text!r}: expected /TOPIC[:ENCODING[:WIDTHxHEIGHT]]')
        encoding = parts[1] if len(parts) > 1 else (
            'jpeg' if parts[0].endswith('/compressed') else 'bgr8')
        width, height = 640, 480
        if len(parts) > 2:
            try:
                width, height = (int(v) for v in parts[2].lower().split('x'))
            except ValueError:
                raise ConfigError(f'camera {text!r}: size must be WIDTHxHEIGHT') from None
        return cls(parts[0], encoding, width, height).checked()

    def checked(self):
        """Validate and fill the frame_id ('<camera>_optical_frame')."""
        if self.encoding not in ENCODINGS:
            raise ConfigError(f'camera {self.topic}: encoding {self.encoding!r} is not one of '
                              f'{", ".join(ENCODINGS)}')
        if (self.encoding == 'jpeg') != self.topic.endswith('/compressed'):
            raise ConfigError(f'camera {self.topic}: JPEG goes on a .../compressed topic '
                              '(image_transport convention), raw encodings on the others')
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ConfigError(f'camera {self.topic}: size {self.width}x{self.height} is outside '
                              '16..8192')
        frame_id = self.frame_id or camera_namespace(self.topic).strip('/').replace('/', '_') \
            + '_optical_frame'
        return dataclasses.replace(self, frame_id=frame_id)

    @property
    def msgtype(self):
        """sensor_msgs type name of the camera's messages."""
        return COMPRESSED_IMAGE if self.encoding == 'jpeg' else IMAGE


DEFAULT_CAMERAS = ('/cam_front/image_raw:bgr8:640x480',
                   '/cam_left/image_raw/compressed:jpeg:640x480')


def view(photo, progress, width, height, direction):
    """One frame: a window of the photo's aspect `width:height` that pans and zooms with time.

    progress 0..1 through the photo's clip; the window shrinks from the whole photo to 70 % of
    it (a zoom-in) while sliding from one side to the other (`direction` +1 or -1).
    """
    rows, cols = photo.shape[:2]
    aspect = width / height
    full_w = min(cols, rows * aspect)
    zoom = 1.0 - 0.3 * progress
    win_w = full_w * zoom
    win_h = win_w / aspect
    slide = (progress - 0.5) * direction
    cx = cols / 2 + slide * (cols - win_w)
    cy = rows / 2 + 0.5 * slide * (rows - win_h)
    scale = width / win_w
    matrix = np.array([[scale, 0, width / 2 - scale * cx],
                       [0, scale, height / 2 - scale * cy]], np.float64)
    return cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def camera_messages(camera, photos, seconds_per_photo, rate_hz, start_ns, camera_index,
                    photo_folder=None):
    """Yield (stamp_ns, message) for one camera, in time order."""
    frames_per_photo = max(1, int(round(seconds_per_photo * rate_hz)))
    period_ns = int(round(1e9 / rate_hz))
    # Cameras are not synchronized: each starts a few milliseconds after the previous one.
    offset_ns = camera_index * 3_000_000
    index = 0
    for photo_index, name in enumerate(photos):
        photo = load_photo(name, photo_folder)
        direction = 1 if (photo_index + camera_index) % 2 == 0 else -1
        for k in range(frames_per_photo):
            rgb = view(photo, k / max(1, frames_per_photo - 1), camera.width, camera.height,
                       direction)
            stamp = start_ns + offset_ns + index * period_ns
            head = messages.header(stamp, camera.frame_id)
            if camera.encoding == 'jpeg':
                ok, encoded = cv2.imencode('.jpg', rgb[:, :, ::-1],
                                           [cv2.IMWRITE_JPEG_QUALITY, camera.jpeg_quality])
                msg = messages.compressed_image(head, encoded.tobytes())
            elif camera.encoding == 'bgr8':
                msg = messages.image(head, rgb[:, :, ::-1], 'bgr8')
            else:
                msg = messages.image(head, rgb, 'rgb8')
            yield stamp, msg
            index += 1


def make_bag(path, cameras=DEFAULT_CAMERAS, photos=PHOTOS, seconds_per_photo=2.0, rate_hz=30.0,
             storage='mcap', start_ns=DEFAULT_START_NS, overwrite=False, photo_folder=None):
    """Write the sequence to a rosbag2 folder; return {topic: message count}.

    Log times equal header stamps (as a recorder next to the camera would give, minus transport).
    """
    specs = [c if isinstance(c, CameraSpec) else CameraSpec.parse(c) for c in cameras]
    specs = [c.checked() for c in specs]
    if len({c.topic for c in specs}) != len(specs):
        raise ConfigError('cameras: each topic may appear once')
    if not photos:
        raise ConfigError('photos: at least one photo is needed')
    if not 0.1 <= rate_hz <= 1000:
        raise ConfigError(f'rate {rate_hz} Hz is outside 0.1..1000')
    streams = [camera_messages(c, photos, seconds_per_photo, rate_hz, start_ns, i, photo_folder)
               for i, c in enumerate(specs)]
    writer = BagWriter(path, storage=storage, overwrite=overwrite)
    complete = False
    try:
        # Interleave cameras in stamp order, as a recorder would store them.
        pending = [next(s, None) for s in streams]
        while any(item is not None for item in pending):
            index = min((i for i, item in enumerate(pending) if item is not None),
                        key=lambda i: pending[i][0])
            stamp, msg = pending[index]
            writer.write(specs[index].topic, specs[index].msgtype, stamp, msg)
            pending[index] = next(streams[index], None)
        complete = True
    finally:
        writer.finish(complete=complete, reason='' if complete else 'make_bag was interrupted')
    return dict(writer.counts)
