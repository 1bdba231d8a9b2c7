"""demo: run perception_node with real models on real photos over DDS and print the results.

Starts the node as its own process (as `ros2 launch` would) with the SSD detector (OpenImages
v4) and the person segmenter, publishes photos shipped with scikit-image as sensor_msgs/Image
and as JPEG sensor_msgs/CompressedImage, and prints the detections, the person-mask fraction
and the node's diagnostics. Usable as `ros2 run dali_trt_ros demo` (models: prepare_models).
"""

import argparse
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np

PHOTOS = ('astronaut', 'chelsea', 'coffee')


def load_photos():
    """Return {name: RGB uint8 array} for the demo photos."""
    from skimage import data
    return {name: getattr(data, name)() for name in PHOTOS}


def image_msg(rgb, stamp_sec, frame_id):
    """Build a bgr8 sensor_msgs/Image (the encoding most camera drivers publish)."""
    from sensor_msgs.msg import Image
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    msg = Image(height=bgr.shape[0], width=bgr.shape[1], encoding='bgr8', step=bgr.shape[1] * 3)
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, frame_id
    msg.data = bgr.tobytes()
    return msg


def compressed_msg(rgb, stamp_sec, frame_id):
    """Build a JPEG sensor_msgs/CompressedImage."""
    from sensor_msgs.msg import CompressedImage
    ok, jpeg = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    msg = CompressedImage(format='jpeg', data=jpeg.tobytes())
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, frame_id
    return msg


def _spin_until(node, condition, timeout):
    import rclpy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        rclpy.spin_once(node, timeout_sec=0.05)
    return condition()


def run_transport(transport, photos, timeout, models):
    """Start a node for one input transport, feed it the photos, print its answers."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray, LabelInfo

    name = f'demo_perception_{transport}'
    topic = 'image_raw' if transport == 'raw' else 'image_raw/compressed'
    # The node's input defaults to the sensor-data profile (best effort); the demo sends one
    # frame at a time and wants each answered, so it asks for reliable input (QoS override).
    proc = subprocess.Popen(
        [sys.executable, '-m', 'dali_trt_ros.nodes.perception_node', '--ros-args',
         '-r', f'__node:={name}', '-p', f'input_transport:={transport}',
         '-p', f'qos_overrides./{topic}.subscription.reliability:=reliable',
         '-p', 'diagnostics_period_s:=0.25',
         '-p', f'models:=[{", ".join(models)}]'],
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    node = rclpy.create_node(f'demo_client_{transport}')
    replies, diagnostics, masks, label_infos = [], [], [], []
    msg_type, build = ((Image, image_msg) if transport == 'raw'
                       else (CompressedImage, compressed_msg))
    pub = node.create_publisher(msg_type, topic,
                                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(Detection2DArray, 'detections', replies.append, 10)
    node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    node.create_subscription(Image, 'segmentation', masks.append, 10)
    node.create_subscription(LabelInfo, 'label_info', label_infos.append, QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    try:
        if not _spin_until(node, lambda: pub.get_subscription_count() > 0
                           and node.count_publishers('detections') > 0, timeout):
            print(f'[{transport}] the node did not come up within {timeout} s', file=sys.stderr)
            return False
        _spin_until(node, lambda: label_infos, 5.0)
        names = {str(c.class_id): c.class_name for info in label_infos[-1:]
                 for c in info.class_map}
        for stamp, (photo, rgb) in enumerate(photos.items(), start=1):
            count = len(replies)
            sent = time.monotonic()
            pub.publish(build(rgb, stamp, f'demo_{photo}'))
            if not _spin_until(node, lambda: len(replies) > count, timeout):
                print(f'[{transport}] no answer for {photo}', file=sys.stderr)
                return False
            out = replies[-1]
            print(f'[{transport}] {photo:10s} {rgb.shape[1]}x{rgb.shape[0]} -> '
                  f'{len(out.detections)} detections, header {out.header.frame_id} '
                  f't={out.header.stamp.sec}, round trip {1e3 * (time.monotonic() - sent):.1f} ms')
            if _spin_until(node, lambda: masks and masks[-1].header == out.header, 2.0):
                person = np.frombuffer(masks[-1].data, np.uint8).mean()
                print(f'    person mask: {100 * person:.1f} % of the frame '
                      f'({masks[-1].width}x{masks[-1].height} mono8)')
            for det in out.detections:
                hyp = det.results[0].hypothesis
                box = det.bbox
                center = box.center.position
                label = names.get(hyp.class_id, f'class {hyp.class_id}')
                print(f'    {label:20s} {hyp.score:.2f}  center ({center.x:.0f}, '
                      f'{center.y:.0f}) size {box.size_x:.0f}x{box.size_y:.0f}')
        _spin_until(node, lambda: any(
            kv.key == 'frames_processed' and kv.value == str(len(photos))
            for a in diagnostics for s in a.status if s.name.startswith(name)
            for kv in s.values), timeout)
        for status in (s for a in diagnostics[-1:] for s in a.status):
            values = ', '.join(f'{kv.key}={kv.value}' for kv in status.values
                               if kv.key != 'last_error')
            print(f'[{transport}] diagnostics: {values}')
        return True
    finally:
        node.destroy_node()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv=None):
    """Run the demo for raw and compressed input; exit non-zero if anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--timeout', type=float, default=30.0,
                        help='seconds to wait for discovery and for each answer')
    parser.add_argument('--models', default='ssd_mobilenetv2_oidv4,selfie_segmentation',
                        help='comma list of model descriptions (config/models)')
    args = parser.parse_args(argv)
    import rclpy
    rclpy.init()
    try:
        photos = load_photos()
        models = [m for m in args.models.split(',') if m]
        ok = all([run_transport('raw', photos, args.timeout, models),
                  run_transport('compressed', photos, args.timeout, models)])
    finally:
        rclpy.try_shutdown()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
