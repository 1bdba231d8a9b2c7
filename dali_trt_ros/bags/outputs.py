"""Perception outputs per frame, read from an output bag or a golden JSON file.

A frame is keyed by (camera namespace, header stamp in ns). From a bag: ``<ns>/detections``
(vision_msgs/Detection2DArray), ``<ns>/segmentation`` (mono8), and when the bag is a live
recording, ``<ns>/input_arrival`` (std_msgs/Header of each input, logged when it reached the
recorder) and ``/diagnostics``. Log times of outputs are their arrival at the recorder.
"""

import base64
import dataclasses
import json
import pathlib

import cv2
import numpy as np

from dali_trt_ros.bags import messages
from dali_trt_ros.bags.io import BagError, deserialize, open_reader
from dali_trt_ros.bags.typestore import DETECTIONS, DIAGNOSTICS, IMAGE, LABEL_INFO

GOLDEN_FORMAT = 'dali_trt_ros.golden/1'
ARRIVAL = 'input_arrival'
HEADER = 'std_msgs/msg/Header'


@dataclasses.dataclass
class FrameOutput:
    """What one frame produced: detection rows (label, score, x1, y1, x2, y2) and a mask."""

    camera: str
    stamp_ns: int
    frame_id: str = ''
    detections: list = None          # None: no detections message for this frame
    mask: np.ndarray = None          # (H, W) uint8 class map, None: no mask
    output_arrival_ns: int = None    # log time of the detections (live: arrival at recorder)
    input_arrival_ns: int = None     # log time of the input (live recordings only)


@dataclasses.dataclass
class OutputSet:
    """Every frame of a run, plus what the bag says about itself."""

    source: str
    frames: dict                     # (camera, stamp_ns) -> FrameOutput
    status: str = ''
    diagnostics: dict = dataclasses.field(default_factory=dict)  # status name -> {key: value}
    labels: dict = dataclasses.field(default_factory=dict)  # detector class_id -> name

    def label(self, class_id):
        """'4 (Person)' when the name is known, else the class_id."""
        name = self.labels.get(class_id)
        return f'{class_id} ({name})' if name else class_id

    def cameras(self):
        """Camera namespaces, sorted."""
        return sorted({camera for camera, _ in self.frames})


def _frame(frames, camera, stamp, frame_id=''):
    key = (camera, stamp)
    if key not in frames:
        frames[key] = FrameOutput(camera, stamp, frame_id)
    return frames[key]


def _suffix(topic, name):
    return topic[:-len(name) - 1] if topic.endswith('/' + name) else None


def read_output_bag(path):
    """Read the OutputSet of an output bag (process_bag's, or a recording of the live node)."""
    from dali_trt_ros.bags.io import custom_data, STATUS_KEY

    reader = open_reader(path)
    frames, diagnostics, labels = {}, {}, {}
    try:
        wanted = []
        for connection in reader.connections:
            topic, msgtype = connection.topic, connection.msgtype
            if ((msgtype == LABEL_INFO and _suffix(topic, 'label_info') is not None
                 and not topic.endswith('/segmentation/label_info'))
                    or (msgtype == DETECTIONS and _suffix(topic, 'detections') is not None)
                    or (msgtype == IMAGE and _suffix(topic, 'segmentation') is not None)
                    or (msgtype == HEADER and _suffix(topic, ARRIVAL) is not None)
                    or msgtype == DIAGNOSTICS):
                wanted.append(connection)
        if not any(c.msgtype == DETECTIONS for c in wanted):
            raise BagError(f'bag {reader.path}: no <camera>/detections topic of type '
                           f'{DETECTIONS}; is this an output bag of process_bag or '
                           'record_outputs?')
        for connection, timestamp, data in reader.messages(wanted):
            msg = deserialize(connection, data, reader.path, timestamp)
            topic = connection.topic
            if connection.msgtype == LABEL_INFO:
                labels.update(messages.label_names(msg))
                continue
            if connection.msgtype == DIAGNOSTICS:
                for status in msg.status:
                    diagnostics[status.name] = {kv.key: kv.value for kv in status.values}
                continue
            if connection.msgtype == HEADER:
                item = _frame(frames, _suffix(topic, ARRIVAL), messages.stamp_ns(msg),
                              msg.frame_id)
                item.input_arrival_ns = timestamp
                continue
            camera = _suffix(topic, 'detections') if connection.msgtype == DETECTIONS \
                else _suffix(topic, 'segmentation')
            item = _frame(frames, camera, messages.stamp_ns(msg.header), msg.header.frame_id)
            if connection.msgtype == DETECTIONS:
                item.detections = messages.detection_rows(msg)
                item.output_arrival_ns = timestamp
            else:
                item.mask = np.array(messages.label_map(msg))
        status = custom_data(reader).get(STATUS_KEY, '')
    finally:
        reader.close()
    return OutputSet(str(path), frames, status, diagnostics, labels)


def _mask_to_text(mask):
    ok, png = cv2.imencode('.png', mask)
    return base64.b64encode(png.tobytes()).decode('ascii')


def _mask_from_text(text):
    png = np.frombuffer(base64.b64decode(text), np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_UNCHANGED)


def write_golden(output_set, path, note=''):
    """Save an OutputSet as golden JSON (masks as base64 PNG; only frames with outputs)."""
    frames = []
    for (camera, stamp), item in sorted(output_set.frames.items()):
        if item.detections is None:
            continue
        frames.append({
            'camera': camera, 'stamp_ns': stamp, 'frame_id': item.frame_id,
            'detections': [[label, round(score, 6), *(round(v, 3) for v in box)]
                           for label, score, *box in item.detections],
            'mask_png': None if item.mask is None else _mask_to_text(item.mask)})
    document = {'format': GOLDEN_FORMAT, 'source': output_set.source, 'note': note,
                'labels': output_set.labels, 'frames': frames}
    pathlib.Path(path).write_text(json.dumps(document, indent=1) + '\n')
    return len(frames)


def read_golden_json(path):
    """Read the OutputSet of a golden JSON file written by :func:`write_golden`."""
    path = pathlib.Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BagError(f'golden {path}: cannot be read ({error})') from None
    if not isinstance(document, dict) or document.get('format') != GOLDEN_FORMAT:
        raise BagError(f'golden {path}: not a {GOLDEN_FORMAT} file (make one with '
                       'evaluate_bag --save-golden)')
    frames = {}
    for entry in document['frames']:
        item = FrameOutput(entry['camera'], int(entry['stamp_ns']), entry.get('frame_id', ''))
        item.detections = [(row[0], float(row[1]), *map(float, row[2:6]))
                           for row in entry['detections']]
        if entry.get('mask_png'):
            item.mask = _mask_from_text(entry['mask_png'])
        frames[(item.camera, item.stamp_ns)] = item
    return OutputSet(str(path), frames, 'complete', labels=dict(document.get('labels') or {}))


def read_outputs(path):
    """Read the OutputSet of a bag folder or a golden JSON file."""
    path = pathlib.Path(path)
    if path.suffix == '.json' and not path.is_dir():
        return read_golden_json(path)
    return read_output_bag(path)
