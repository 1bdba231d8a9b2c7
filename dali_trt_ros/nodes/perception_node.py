"""perception_node: camera frames in; detections, masks, overlays, labels and diagnostics out.

One camera by default (topics relative to the node's namespace), or several with the
``cameras`` parameter, each under its own namespace (``front/image_raw`` ->
``front/detections``). Frames of different cameras that arrive within ``batch_timeout_ms`` go
through ONE pipeline run as one batch; no camera waits longer than that for another.

Threading: subscription callbacks only hand the message to the camera's one-deep mailbox
(CameraBatcher) and return, so DDS is always drained; one worker thread runs the pipeline on
the newest frames. Frames replaced before processing are counted as dropped, frames that fail
are counted by reason, frames the middleware lost are counted from its message-lost events, and
all of it appears in /diagnostics per camera and per model.

With ``models`` empty the node only validates frames (and answers with empty detections); it
says so at start.
"""

import logging
import os
import signal
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, qos_profile_sensor_data, QoSProfile,
                       ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import (Detection2D, Detection2DArray, LabelInfo, ObjectHypothesisWithPose,
                             VisionClass)

from dali_trt_ros.camera_batcher import CameraBatcher
from dali_trt_ros.errors import ConfigError, FrameError, PerceptionError
from dali_trt_ros.frame_stats import bounded_text, FrameStats, ModelStats
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS
from dali_trt_ros.memory import return_freed_frames_to_os
from dali_trt_ros.nodes import parameters, ros_io

_DETECTION_TYPES = (Detection2DArray, Detection2D, ObjectHypothesisWithPose)
_LABEL_TYPES = (LabelInfo, VisionClass)
_LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
           'stale': DiagnosticStatus.STALE}
STOP_WAIT_S = 1.0  # how long a stop waits for a frame in flight (the node must end in 2 s)
OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Camera:
    """One camera's topics, publishers and accounting."""

    def __init__(self, name, transport):
        self.name = name  # '' for the single default camera (topics in the node namespace)
        self.transport = transport
        self.stats = FrameStats()
        self.prefix = f'{name}/' if name else ''
        self.input_topic = self.prefix + ('image_raw' if transport == 'raw'
                                          else 'image_raw/compressed')
        self.msg_type = Image if transport == 'raw' else CompressedImage
        self.qos_warnings = set()
        self.incompatible_qos_events = 0

    @property
    def label(self):
        """Name used in logs and diagnostics."""
        return self.name or 'camera'


class RclpyLogHandler(logging.Handler):
    """Forward the package's Python log records to the node's rclpy logger.

    The core (engines, preprocessing, the codec-message router) logs through Python's logging;
    without this those records reach stderr through logging's last-resort handler, outside the
    node's log format, rosout and the log files of `ros2 launch`.
    """

    def __init__(self, ros_logger):
        super().__init__(level=logging.INFO)
        self._ros_logger = ros_logger

    def emit(self, record):
        """Log one record through rclpy at the matching severity, as one bounded line."""
        try:
            text = bounded_text(self.format(record), 500)
            if record.levelno >= logging.ERROR:
                self._ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._ros_logger.warning(text)
            else:
                self._ros_logger.info(text)
        except Exception:  # noqa: B902 - logging must never take the node down
            self.handleError(record)


class PerceptionNode(Node):
    """Subscribes to one or more cameras; publishes per-camera results and diagnostics."""

    def __init__(self, **kwargs):
        super().__init__('perception_node', **kwargs)
        self._log_handler = RclpyLogHandler(self.get_logger())
        package_logger = logging.getLogger('dali_trt_ros')
        package_logger.addHandler(self._log_handler)
        if package_logger.level == logging.NOTSET:
            package_logger.setLevel(logging.INFO)  # engine builds and cache hits are worth a line
        self.pipeline = None
        self._batcher = None
        self._worker = None
        self._stopping = False
        self.cameras = []
        try:
            self._setup()
        except BaseException:
            self._release()  # a half-built node tears down what it built, nothing else
            raise

    def _setup(self):
        names = parameters.camera_names(parameters.string_array(
            self, 'cameras', 'Camera names; each gets its topics under its own namespace '
            '(front/image_raw -> front/detections). Empty: one camera, topics in the node '
            'namespace.'))
        transport = parameters.choice(
            self, 'input_transport', 'raw', ('raw', 'compressed'),
            'Subscribe to sensor_msgs/Image on "image_raw" (raw) or sensor_msgs/CompressedImage '
            'on "image_raw/compressed" (compressed), for every camera.')
        for name in names or ['']:
            if name:  # per-camera override, e.g. left.input_transport: compressed
                camera_transport = parameters.choice(
                    self, f'{name}.input_transport', transport, ('raw', 'compressed'),
                    f'Input transport of camera {name} (default: input_transport).')
            else:
                camera_transport = transport
            self.cameras.append(Camera(name, camera_transport))
        self.batch_timeout_s = parameters.double(
            self, 'batch_timeout_ms', 10.0, 0.0, 1000.0,
            'Longest time a camera frame waits for the other cameras to join its batch.',
            read_only=True) / 1e3
        self.period = parameters.double(self, 'diagnostics_period_s', 1.0, 0.1, 60.0,
                                        'Seconds between /diagnostics messages.', read_only=True)
        self.stale_after_s = parameters.double(
            self, 'stale_after_s', 2.0, 0.1, 600.0,
            'A camera without frames for this long is reported STALE.', read_only=True)
        self.hardware_id = parameters.string(self, 'hardware_id', 'camera',
                                             'hardware_id reported in diagnostics.')
        self.max_pixels = parameters.integer(
            self, 'max_pixels', DEFAULT_MAX_PIXELS, 1, 2 ** 31 - 1,
            'Frames declaring more pixels (width x height) than this are refused before '
            'decoding; the default fits DCI 8K (8192x4320).')
        self.publish_overlay = parameters.boolean(
            self, 'publish_overlay', True,
            'Render "overlay" (boxes and mask over the frame) while someone subscribes '
            '(run-time adjustable).')
        self.pipeline = self._create_pipeline()
        self.model_stats = {model.name: ModelStats() for model in self._models()}
        self._batches = {'batches': 0, 'frames': 0, 'largest_batch': 0}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._create_topics()
        self._batcher = CameraBatcher([camera.stats for camera in self.cameras],
                                      self.batch_timeout_s)
        self.create_timer(self.period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name='perception_worker',
                                        daemon=True)
        self._worker.start()

    # -- models ------------------------------------------------------------------------------
    def _models(self):
        return list(self.pipeline.models) if self.pipeline is not None else []

    def _create_pipeline(self):
        """Declare the model parameters and build the chain (None: validate frames only)."""
        models = parameters.string_array(self, 'models', 'Model descriptions (names in '
                                         'config/models or YAML paths); empty: validate frames '
                                         'only.')
        backend = parameters.choice(self, 'backend', 'onnxruntime', ('onnxruntime', 'tensorrt'),
                                    'Inference backend.')
        providers = parameters.string_array(self, 'providers',
                                            'ONNX Runtime providers in order: cpu, cuda.')
        providers = providers or ['cpu']
        for provider in providers:
            if provider not in ('cpu', 'cuda'):
                raise ConfigError(f"parameter 'providers': {bounded_text(repr(provider), 80)} "
                                  "is not one of ['cpu', 'cuda']")
        device = parameters.choice(self, 'preprocess_device', 'auto', ('auto', 'gpu', 'cpu'),
                                   'Where to decode/resize: auto picks the GPU when DALI can.')
        device_id = parameters.integer(self, 'device_id', 0, 0, 15, 'CUDA device.')
        precision = parameters.choice(
            self, 'precision', 'fp32', ('fp32', 'fp16'),
            'ONNX model variant: fp32, or fp16 weights (made at preparation time). TensorRT '
            'precision is set per model in engine_config_file.')
        postprocess = parameters.choice(
            self, 'postprocess', 'auto', ('auto', 'host', 'device'),
            'Where decoding runs: in the model graph on the device, on the host, or auto '
            '(device when the models run on a GPU and the decoder supports it).')
        engines_file = parameters.string(
            self, 'engine_config_file', '', 'YAML mapping model name -> engine settings '
            '(precision, dla_core, engine_cache_dir, ...).')
        self._thresholds = {
            'score_threshold': parameters.double(
                self, 'score_threshold', 0.4, 0.0, 1.0,
                'Minimum detection score (run-time adjustable).'),
            'nms_iou_threshold': parameters.double(
                self, 'nms_iou_threshold', 0.5, 0.0, 1.0,
                'NMS IoU threshold (run-time adjustable).'),
            'mask_threshold': parameters.double(
                self, 'mask_threshold', 0.5, 0.0, 1.0,
                'Probability threshold of single-channel segmentation masks (run-time '
                'adjustable).'),
        }
        if not models:
            self.get_logger().warning(
                "parameter 'models' is empty: frames are only validated and every detections "
                'message is empty. Set models (e.g. [ssd_mobilenetv2_oidv4]) to run inference.')
            return None
        from dali_trt_ros.perception import PerceptionPipeline, postprocess_for
        overrides = {}
        if engines_file:
            import yaml
            try:
                with open(engines_file) as stream:
                    overrides = yaml.safe_load(stream) or {}
            except (OSError, yaml.YAMLError) as error:
                raise ConfigError(f"parameter 'engine_config_file': "
                                  f'{bounded_text(error, 300)}') from None
        pipeline = PerceptionPipeline.from_models(
            models, backend=backend, providers=tuple(providers), device=device,
            device_id=device_id, engine_overrides=overrides, max_batch=len(self.cameras),
            max_pixels=self.max_pixels, postprocess=postprocess, precision=precision)
        self._model_settings = {
            model.name: {'precision': (overrides.get(model.name) or {}).get(
                'precision', precision) if backend == 'tensorrt' else precision,
                'postprocess': postprocess_for(model.description, postprocess,
                                               backend == 'tensorrt' or 'cuda' in providers),
                'dla_core': (overrides.get(model.name) or {}).get('dla_core')}
            for model in pipeline.models}
        try:
            self._check_model_roles(pipeline)
            for name, value in self._thresholds.items():
                self._apply_threshold(pipeline, name, value)
        except BaseException:
            pipeline.close()
            raise
        self.get_logger().info(
            f'models: {", ".join(m.name for m in pipeline.models)} on {backend} '
            f'{providers}; preprocessing: {pipeline.preprocessor.backend}; batch of up to '
            f'{len(self.cameras)} camera(s)')
        return pipeline

    @staticmethod
    def _check_model_roles(pipeline):
        detectors = [m.name for m in pipeline.models if not m.is_segmentation]
        segmenters = [m.name for m in pipeline.models if m.is_segmentation]
        for role, names, topic in (('detectors', detectors, 'detections'),
                                   ('segmenters', segmenters, 'segmentation')):
            if len(names) > 1:
                raise ConfigError(f"parameter 'models': {names} are all {role}, but a node "
                                  f'publishes one "{topic}" topic per camera; run one node '
                                  'per extra model')

    def _detector(self):
        return next((m for m in self._models() if not m.is_segmentation), None)

    def _segmenter(self):
        return next((m for m in self._models() if m.is_segmentation), None)

    @staticmethod
    def _apply_threshold(pipeline, name, value):
        keyword = {'score_threshold': 'score', 'nms_iou_threshold': 'nms_iou',
                   'mask_threshold': 'mask'}[name]
        pipeline.set_thresholds(**{keyword: value})

    def _on_set_parameters(self, params):
        # Types, ranges and read-only flags are enforced by rclpy before this callback runs.
        changed = False
        for param in params:
            if param.name in self._thresholds:
                self._thresholds[param.name] = param.value
                if self.pipeline is not None:
                    self._apply_threshold(self.pipeline, param.name, param.value)
                changed = changed or param.name != 'nms_iou_threshold'
            elif param.name == 'publish_overlay':
                self.publish_overlay = bool(param.value)
        if changed:
            self._publish_label_info()
        return SetParametersResult(successful=True)

    # -- topics ------------------------------------------------------------------------------
    def _create_topics(self):
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        for index, camera in enumerate(self.cameras):
            camera.detections_pub = self.create_publisher(
                Detection2DArray, camera.prefix + 'detections', OUTPUT_QOS)
            camera.mask_pub = self.create_publisher(Image, camera.prefix + 'segmentation',
                                                    OUTPUT_QOS)
            camera.overlay_pub = self.create_publisher(Image, camera.prefix + 'overlay',
                                                       OUTPUT_QOS)
            camera.label_info_pub = self.create_publisher(
                LabelInfo, camera.prefix + 'label_info', LATCHED_QOS)
            camera.mask_label_info_pub = self.create_publisher(
                LabelInfo, camera.prefix + 'segmentation/label_info', LATCHED_QOS)
            events = SubscriptionEventCallbacks(
                message_lost=lambda info, c=camera: c.stats.on_lost(info.total_count_change),
                incompatible_qos=lambda info, c=camera: self._on_incompatible_qos(c, info))
            camera.subscription = self.create_subscription(
                camera.msg_type, camera.input_topic,
                lambda msg, i=index: self._on_image(i, msg), qos_profile_sensor_data,
                event_callbacks=events,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
            qos = camera.subscription.qos_profile
            self.get_logger().info(
                f'{camera.label}: listening on {camera.subscription.topic_name} '
                f'({camera.msg_type.__name__}, {qos.reliability.name.lower()}, depth '
                f'{qos.depth}); publishing {camera.detections_pub.topic_name}')
        self._publish_label_info()

    def _publish_label_info(self):
        """Latched LabelInfo: class index -> name of the detector and of the segmenter."""
        detector, segmenter = self._detector(), self._segmenter()
        stamp = self.get_clock().now().to_msg()
        for camera in self.cameras:
            for model, publisher, threshold in (
                    (detector, camera.label_info_pub, self._thresholds['score_threshold']),
                    (segmenter, camera.mask_label_info_pub,
                     self._thresholds['mask_threshold'])):
                if model is not None:
                    publisher.publish(ros_io.label_info_msg(
                        Header(stamp=stamp), model.description.labels, threshold,
                        _LABEL_TYPES))

    def _on_incompatible_qos(self, camera, info):
        camera.incompatible_qos_events += info.total_count_change
        policy = getattr(info.last_policy_kind, 'name', str(info.last_policy_kind))
        if policy in camera.qos_warnings:
            return
        camera.qos_warnings.add(policy)
        self.get_logger().warning(
            f'{camera.label}: a publisher on {camera.subscription.topic_name} offers a QoS '
            f'incompatible with this subscription (policy {policy}): none of its frames will '
            'arrive. Make the publisher reliable or this subscription best effort (see the '
            'README, "QoS").')

    def _on_image(self, index, msg):
        camera = self.cameras[index]
        camera.stats.on_received()
        self._batcher.put(index, (msg, time.monotonic(), self.get_clock().now().nanoseconds))

    # -- processing --------------------------------------------------------------------------
    def _work(self):
        while not self._batcher.closed:
            batch = self._batcher.take_batch(timeout=0.5)
            if batch and not self._stopping:
                try:
                    self._process_batch(batch)
                except Exception as error:  # noqa: B902 - a bug must not stop the worker
                    for index, _ in batch:
                        self.cameras[index].stats.on_failed(error)
                    self._warn(f'unexpected {type(error).__name__}: {error}', error=True)

    def _warn(self, text, error=False):
        if self._stopping:
            return
        log = self.get_logger().error if error else self.get_logger().warning
        log(bounded_text(text, 300), throttle_duration_sec=2.0)

    def _process_batch(self, batch):
        from dali_trt_ros.preprocess.inputs import frame_from_message
        started = time.monotonic()
        frames, items = [], []
        for index, (msg, arrived, arrived_ns) in batch:
            try:
                frames.append(frame_from_message(msg))
                items.append((self.cameras[index], msg, arrived, arrived_ns))
            except FrameError as error:
                self._frame_failed(self.cameras[index], msg, error)
        if not frames:
            return
        results = self._run(frames)
        self._batches['batches'] += 1
        self._batches['frames'] += len(frames)
        self._batches['largest_batch'] = max(self._batches['largest_batch'], len(frames))
        for (camera, msg, arrived, arrived_ns), frame, result in zip(items, frames, results):
            if self._stopping:
                return
            stages = {'queue': (started - arrived) * 1e3}
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            if stamp_ns and 0 <= arrived_ns - stamp_ns < 60_000_000_000:
                stages['transport'] = (arrived_ns - stamp_ns) / 1e6  # same clock: meaningful
            self._deliver(camera, msg, frame, result, arrived, stages)

    def _run(self, frames):
        """Pipeline results for the frames; without models, validation-only results."""
        if self.pipeline is not None:
            results = self.pipeline.process(frames)
            for model in self._models():
                failed = sum(1 for r in results if model.name in r.model_errors)
                done = sum(1 for r in results if r.error is None) - failed
                timings = next((r.timings_ms for r in results), {})
                if done:
                    self.model_stats[model.name].on_batch(timings, model.name, done)
                if failed:
                    error = next(r.model_errors[model.name] for r in results
                                 if model.name in r.model_errors)
                    self.model_stats[model.name].on_batch(timings, model.name, failed, error)
            return results
        from dali_trt_ros.perception import FrameResult
        from dali_trt_ros.preprocess.inputs import prepare_frame
        results = []
        for index, frame in enumerate(frames):
            result = FrameResult(index=index, batch_size=len(frames))
            start = time.perf_counter()
            try:
                prepare_frame(frame, self.max_pixels)
            except FrameError as error:
                result.error = error
            result.timings_ms = {'preprocess': (time.perf_counter() - start) * 1e3}
            results.append(result)
        return results

    def _frame_failed(self, camera, msg, error):
        camera.stats.on_failed(error)
        stamp = msg.header.stamp
        self._warn(f'{camera.label}: frame {stamp.sec}.{stamp.nanosec:09d} skipped: {error}')

    def _deliver(self, camera, msg, frame, result, arrived, stages):
        """Publish one camera's results; count the frame as processed or failed."""
        if result.error is not None:
            self._frame_failed(camera, msg, result.error)
            return
        models = self._models()
        if models and len(result.model_errors) == len(models):
            error = next(iter(result.model_errors.values()))
            self._frame_failed(camera, msg, error)
            return
        for name, error in result.model_errors.items():
            self._warn(f'{camera.label}: model {name} failed on this frame, its output is not '
                       f'published (the other models go on): {error}')
        stages.update(result.timings_ms)
        publish_start = time.monotonic()
        detector, segmenter = self._detector(), self._segmenter()
        detections = result.detections.get(detector.name) if detector else None
        segmentation = result.segmentations.get(segmenter.name) if segmenter else None
        try:
            if detections is not None or not models:
                camera.detections_pub.publish(
                    ros_io.detections_msg(msg.header, detections, _DETECTION_TYPES))
            if segmentation is not None:
                camera.mask_pub.publish(ros_io.mono8_msg(msg.header, segmentation.label_map))
            if self.publish_overlay and camera.overlay_pub.get_subscription_count() > 0:
                self._publish_overlay(camera, msg, frame, detections, segmentation)
        except Exception as error:  # noqa: B902 - e.g. RCLError while the graph tears down
            if self._stopping:
                return
            camera.stats.on_failed(error)
            self._warn(f'{camera.label}: publishing failed: {type(error).__name__}: {error}')
            return
        stages['publish'] = (time.monotonic() - publish_start) * 1e3
        camera.stats.on_processed(time.monotonic() - arrived, stages)

    def _publish_overlay(self, camera, msg, frame, detections, segmentation):
        from dali_trt_ros.preprocess.inputs import decode_rgb, prepare_frame
        try:
            rgb = decode_rgb(prepare_frame(frame, self.max_pixels))
            image = ros_io.render_overlay(rgb, detections, segmentation)
        except (PerceptionError, ValueError) as error:
            error = FrameError(f'overlay not drawn: {error}')
            error.reason = 'overlay_failed'
            camera.stats.on_error(error)
            self._warn(f'{camera.label}: {error}')
            return
        camera.overlay_pub.publish(ros_io.rgb8_msg(msg.header, image))

    # -- diagnostics -------------------------------------------------------------------------
    def _publish_diagnostics(self):
        node = self.get_name()
        statuses = []
        for camera in self.cameras:
            snap = camera.stats.snapshot()
            level, message = camera.stats.health(snap, self.stale_after_s)
            if camera.incompatible_qos_events:
                snap['incompatible_qos_events'] = camera.incompatible_qos_events
                if level == 'ok':
                    level, message = 'warn', 'a publisher with incompatible QoS is ignored'
            snap['topic'] = camera.subscription.topic_name
            snap['transport'] = camera.transport
            statuses.append(self._status(f'{node}: {camera.label}', camera.label, level,
                                         message, snap))
        statuses.append(self._status(
            f'{node}: pipeline', 'pipeline', 'ok',
            f'{len(self.cameras)} camera(s), {len(self._models())} model(s)',
            {**self._batches, 'batch_timeout_ms': self.batch_timeout_s * 1e3,
             'preprocessing': self.pipeline.preprocessor.backend if self.pipeline else 'none'}))
        for model in self._models():
            snap = self.model_stats[model.name].snapshot()
            snap.update(self._model_facts(model))
            recent = snap['frames_failed'] > 0
            statuses.append(self._status(
                f'{node}: model {model.name}', model.name, 'warn' if recent else 'ok',
                f"{snap['frames_failed']} frames failed" if recent else 'running', snap))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        try:
            self.diagnostics_pub.publish(array)
        except Exception:  # noqa: B902 - only during teardown; nothing to report it to
            if not self._stopping:
                raise

    def _status(self, name, part, level, message, values):
        hardware_id = self.hardware_id if len(self.cameras) == 1 else f'{self.hardware_id}/{part}'
        status = DiagnosticStatus(name=name, hardware_id=hardware_id, level=_LEVELS[level],
                                  message=bounded_text(message, 300))
        status.values = [
            KeyValue(key=key, value=(f'{value:.3f}' if isinstance(value, float)
                                     else bounded_text(value, 300)))
            for key, value in values.items()]
        return status

    def _model_facts(self, model):
        """Backend, device and precision of a model's engine, as far as the engine says."""
        engine = model.engine
        facts = {'backend': type(engine).__name__}
        providers = getattr(engine, 'providers', None)
        if providers:
            facts['device'] = ', '.join(str(p) for p in providers)
        settings = getattr(self, '_model_settings', {}).get(model.name, {})
        facts.update({key: value for key, value in settings.items() if value is not None})
        for key in ('precision', 'device', 'dla_core', 'dla_gpu_fallback', 'built',
                    'load_seconds'):
            value = getattr(engine, key, None)  # what the engine itself reports wins
            if value is not None:
                facts[key] = value
        if self.pipeline is not None:
            facts['preprocessing'] = self.pipeline.preprocessor.backend
        return facts

    # -- shutdown ----------------------------------------------------------------------------
    def stop(self, timeout=STOP_WAIT_S):
        """Stop taking frames and wait up to `timeout` for the frame in flight.

        Returns True when the worker finished (then the pipeline is closed: engines and GPU
        memory released), False when a frame was still running.
        """
        self._stopping = True
        if self._batcher is not None:
            self._batcher.close()
        if self._worker is not None:
            self._worker.join(timeout)
            if self._worker.is_alive():
                return False
        self._close_pipeline()
        return True

    def _close_pipeline(self):
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.close()
            self.get_logger().info('models closed: engines and their memory released')

    def _release(self):
        if self._batcher is not None:
            self._batcher.close()
        self._close_pipeline()

    def destroy_node(self):
        """Stop the worker (a pending frame counts as dropped) before tearing down."""
        self.stop()
        logging.getLogger('dali_trt_ros').removeHandler(self._log_handler)
        super().destroy_node()


def main(args=None):
    """Run the node until SIGINT/SIGTERM; exit 2 on invalid parameters or models."""
    # Freed camera frames go back to the system: without this a 4-camera soak grew RSS 9 %.
    return_freed_frames_to_os()
    stop_requested = threading.Event()

    def on_signal(signum, frame):
        # rclpy's own handler would shut the context down under the worker (publishing on a
        # dead context logs errors); here a signal only asks the loop below to stop. A second
        # signal changes nothing: the stop is already bounded by STOP_WAIT_S.
        stop_requested.set()

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        node = PerceptionNode()
    except PerceptionError as error:  # ConfigError, ModelError: the message says what to do
        print(f'perception_node: {error}', file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop_requested.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    if node.stop():
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
    else:
        node.get_logger().warning(
            f'a frame was still being processed {STOP_WAIT_S:g} s after the stop request; '
            'exiting without waiting for it (the OS releases its memory)')
    # Everything this node owns is released above (or abandoned with the frame in flight). The
    # interpreter's own teardown (unloading ONNX Runtime, DALI, CUDA) can take a second and
    # has aborted in C++ destructors while a worker thread still ran: skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
