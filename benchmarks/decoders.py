"""Print decoder timing tables, and optionally decode a real SSD on scikit-image photos.

    .venv/bin/python benchmarks/decoders.py [--ssd-onnx PATH] [--repeat N]

Timings are CPU wall-clock medians on this machine; nothing here is a test. NMS alone, against
OpenCV, is benchmarks/nms.py.
"""

import argparse
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SSD_CONFIG = REPO / 'config' / 'models' / 'ssd_mobilenetv2_oidv4.yaml'

from timing import median_ms  # noqa: E402 (this folder, first on sys.path when run)


def load_ssd_config():
    """Return the (decoder mapping, labels) of the shipped SSD model configuration."""
    import yaml

    config = yaml.safe_load(SSD_CONFIG.read_text())
    labels_path = SSD_CONFIG.parent.parent / config['labels']
    labels = [line.strip() for line in labels_path.read_text().splitlines() if line.strip()]
    return config['decoder'], labels


def bench_ssd_decode(repeat):
    """Time the full raw SSD decode (1917 anchors x 24 columns) at several thresholds."""
    from dali_trt_ros.decoders import SsdDecoder
    from dali_trt_ros.preprocess.geometry import FrameGeometry

    mapping, labels = load_ssd_config()
    decoder = SsdDecoder.from_config(mapping, labels)
    rng = np.random.default_rng(1)
    outputs = {mapping['box_output']: rng.normal(0, 1, (1, 1917, 4)).astype(np.float32),
               mapping['score_output']: rng.normal(-4, 2, (1, 1917, 24)).astype(np.float32)}
    geometry = FrameGeometry.letterbox(1920, 1080, 300, 300)
    print('\nSSD raw decode, 1917 anchors x 24 (random logits N(-4, 2)), 1080p letterbox')
    print(f'{"threshold":>9} {"candidates":>10} {"detections":>10} {"ms":>8}')
    for threshold in (0.5, 0.3, 0.1, 0.05):
        decoder.score_threshold = threshold
        candidates = int((1 / (1 + np.exp(-outputs[mapping['score_output']][0, :, 1:]))
                          >= threshold).sum())
        found = len(decoder.decode(outputs, [geometry])[0])
        elapsed = median_ms(lambda: decoder.decode(outputs, [geometry]), repeat)
        print(f'{threshold:>9} {candidates:>10} {found:>10} {elapsed:>8.3f}')


def bench_segmentation(repeat):
    """Time argmax + upsampling to 1080p for DeepLab-like and selfie-like outputs."""
    from dali_trt_ros.decoders import SegmentationDecoder
    from dali_trt_ros.preprocess.geometry import FrameGeometry

    rng = np.random.default_rng(2)
    cases = [('logits NCHW 21x512x512', SegmentationDecoder('o', kind='logits'),
              rng.normal(size=(1, 21, 512, 512)).astype(np.float32), 512),
             ('probability 1x256x256', SegmentationDecoder('o', kind='probability'),
              rng.uniform(size=(1, 256, 256, 1)).astype(np.float32), 256)]
    print('\nsegmentation decode to 1920x1080 (letterbox)')
    print(f'{"case":<26} {"ms":>8}')
    for name, decoder, array, size in cases:
        geometry = FrameGeometry.letterbox(1920, 1080, size, size)
        elapsed = median_ms(lambda: decoder.decode({'o': array}, [geometry]), repeat)
        print(f'{name:<26} {elapsed:>8.3f}')


def run_real_ssd(onnx_path, providers, repeat=20):
    """Decode the real SSD on scikit-image photos (stretch, x / 127.5 - 1) and print detections."""
    import cv2
    import onnxruntime
    from skimage import data

    from dali_trt_ros.decoders import SsdDecoder
    from dali_trt_ros.preprocess.geometry import FrameGeometry

    mapping, labels = load_ssd_config()
    decoder = SsdDecoder.from_config(mapping, labels)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=providers)
    input_name = session.get_inputs()[0].name
    output_names = [output.name for output in session.get_outputs()]
    print(f'\nreal SSD {onnx_path} on {session.get_providers()[0]}, '
          f'score_threshold {decoder.score_threshold}')
    timings = []
    for name in ('astronaut', 'chelsea', 'coffee'):
        image = getattr(data, name)()
        height, width = image.shape[:2]
        resized = cv2.resize(image, (300, 300), interpolation=cv2.INTER_LINEAR)
        tensor = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        outputs = dict(zip(output_names, session.run(None, {input_name: tensor})))
        geometry = FrameGeometry.stretch(width, height, 300, 300)
        detections = decoder.decode(outputs, [geometry])[0]
        for row in detections.to_rows():
            box = ', '.join(f'{row[k]:.1f}' for k in ('x1', 'y1', 'x2', 'y2'))
            print(f'{name:<10} {width}x{height}  {row["label"]:<12} {row["score"]:.3f}  [{box}]')
        timings.append((name, outputs, geometry))
    configured = decoder.score_threshold
    print(f'\ndecode time of the real outputs (ms) by score threshold; NMS IoU '
          f'{decoder.nms_iou_threshold}, top_k {decoder.top_k}')
    thresholds = (0.5, 0.3, 0.1, 0.05, 0.01)
    print(f'{"image":<10}' + ''.join(f'{t:>9}' for t in thresholds))
    for name, outputs, geometry in timings:
        cells = []
        for threshold in thresholds:
            decoder.score_threshold = threshold
            cells.append(median_ms(lambda: decoder.decode(outputs, [geometry]), repeat))
        print(f'{name:<10}' + ''.join(f'{c:>9.3f}' for c in cells))
    decoder.score_threshold = configured


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=50)
    parser.add_argument('--ssd-onnx', type=pathlib.Path,
                        help='run the real SSD (ssd_mobilenetv2_oidv4.onnx) on sample photos')
    parser.add_argument('--cuda', action='store_true',
                        help='run the real SSD with the ONNX Runtime CUDA execution provider')
    args = parser.parse_args(argv)
    bench_ssd_decode(args.repeat)
    bench_segmentation(max(3, args.repeat // 10))
    if args.ssd_onnx:
        providers = ['CPUExecutionProvider']
        if args.cuda:
            providers.insert(0, 'CUDAExecutionProvider')
        run_real_ssd(args.ssd_onnx, providers, args.repeat)


if __name__ == '__main__':
    main()
