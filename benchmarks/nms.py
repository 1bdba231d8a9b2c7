"""Class-wise NMS: this package's NumPy NMS vs OpenCV's cv2.dnn.NMSBoxesBatched, same inputs.

    .venv/bin/python benchmarks/nms.py [--repeat N] [--json PATH]

Candidate sets are what the SSD decoder hands to NMS: (1) the real SSD-MobileNetV2 outputs of
the photos the tests use (skimage astronaut, chelsea, coffee), after score thresholds from
0.5 down to 0.01; (2) random SSD-like sets of 50..4000 candidates. For each set both
implementations run on the same boxes; the table gives CPU wall-clock medians (conversion to
OpenCV's x, y, w, h boxes included, as production would pay it), the ratio, and whether the
kept index lists (in order) are identical. Nothing here is a test.
"""

import argparse
import json
import pathlib
import sys

import cv2
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dali_trt_ros.decoders import decoder_from_config  # noqa: E402
from dali_trt_ros.decoders.nms import batched_nms  # noqa: E402
from dali_trt_ros.models import load_model_description  # noqa: E402
from timing import median_ms  # noqa: E402 (this folder, first on sys.path when run)

SSD = 'ssd_mobilenetv2_oidv4'
PHOTOS = ('astronaut', 'chelsea', 'coffee')
THRESHOLDS = (0.5, 0.4, 0.3, 0.1, 0.05, 0.01)
RANDOM_COUNTS = (50, 100, 200, 500, 1000, 2000, 4000)


def opencv_batched_nms(boxes, scores, classes, iou_threshold, max_total=None):
    """Run cv2.dnn.NMSBoxesBatched on x1, y1, x2, y2 boxes; kept indices, best first."""
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    # score_threshold -1: every candidate already passed the decoder's own threshold.
    keep = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), classes.astype(np.int32),
                                   -1.0, float(iou_threshold))
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return keep if max_total is None else keep[:max_total]


def real_candidate_sets():
    """Yield (name, boxes, scores, classes) of the real SSD's NMS input on the test photos."""
    import onnxruntime
    from skimage import data

    from dali_trt_ros.preprocess import InputSpec, OpenCVPreprocessor, PreprocessSpec, RawFrame

    description = load_model_description(SSD)
    decoder = decoder_from_config(description.decoder, description.labels)
    spec = InputSpec.from_dict(description.input)
    preprocessor = OpenCVPreprocessor(PreprocessSpec((spec,)), num_threads=1)
    session = onnxruntime.InferenceSession(str(description.onnx_path),
                                           providers=['CPUExecutionProvider'])
    for photo in PHOTOS:
        rgb = getattr(data, photo)()
        frame = RawFrame(rgb.tobytes(), rgb.shape[1], rgb.shape[0], 'rgb8')
        tensor = preprocessor.run([frame]).tensors[spec.name]
        outputs = dict(zip([o.name for o in session.get_outputs()],
                           session.run(None, {spec.name: tensor})))
        arrays = {'box_output': outputs[description.decoder['box_output']],
                  'score_output': outputs[description.decoder['score_output']]}
        for threshold in THRESHOLDS:
            decoder.score_threshold = threshold
            boxes, scores, columns, _ = decoder._raw_candidates(arrays, 0)
            yield f'{photo} @{threshold}', boxes, scores, columns


def random_candidate_sets():
    """Yield SSD-like random sets: boxes in a unit image, 23 classes, float32 scores."""
    rng = np.random.default_rng(0)
    for count in RANDOM_COUNTS:
        xy = rng.uniform(0, 0.85, (count, 2))
        boxes = np.column_stack([xy, xy + rng.uniform(0.03, 0.4, (count, 2))])
        scores = rng.uniform(0.05, 1, count).astype(np.float32)
        yield f'random {count}', boxes, scores, rng.integers(1, 24, count)


def compare(name, boxes, scores, classes, iou, top_k, repeat):
    """Time both implementations on one candidate set and check they keep the same boxes."""
    ours = batched_nms(boxes, scores, classes, iou, max_total=top_k)
    theirs = opencv_batched_nms(boxes, scores, classes, iou, max_total=top_k)
    row = {'set': name, 'candidates': int(scores.size), 'kept': int(ours.size),
           'numpy_ms': median_ms(lambda: batched_nms(boxes, scores, classes, iou,
                                                     max_total=top_k), repeat),
           'opencv_ms': median_ms(lambda: opencv_batched_nms(boxes, scores, classes, iou,
                                                             max_total=top_k), repeat),
           'identical': bool(np.array_equal(ours, theirs))}
    row['numpy_over_opencv'] = row['numpy_ms'] / max(row['opencv_ms'], 1e-9)
    return row


def main(argv=None):
    """Print the comparison table (and write it as JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=200)
    parser.add_argument('--iou', type=float, default=0.6, help='NMS IoU threshold (SSD YAML)')
    parser.add_argument('--top-k', type=int, default=100)
    parser.add_argument('--json', type=pathlib.Path, help='also write the rows here')
    args = parser.parse_args(argv)
    print(f'class-wise NMS, IoU {args.iou}, top_k {args.top_k}; CPU medians of '
          f'{args.repeat} calls, OpenCV {cv2.__version__}, NumPy {np.__version__}')
    print(f'{"candidate set":<20} {"cands":>6} {"kept":>5} {"numpy ms":>9} {"opencv ms":>9} '
          f'{"np/cv":>6} {"same":>5}')
    rows = []
    for sets in (real_candidate_sets(), random_candidate_sets()):
        for name, boxes, scores, classes in sets:
            row = compare(name, boxes, scores, classes, args.iou, args.top_k, args.repeat)
            rows.append(row)
            print(f'{row["set"]:<20} {row["candidates"]:>6} {row["kept"]:>5} '
                  f'{row["numpy_ms"]:>9.3f} {row["opencv_ms"]:>9.3f} '
                  f'{row["numpy_over_opencv"]:>6.1f} {str(row["identical"]):>5}', flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
