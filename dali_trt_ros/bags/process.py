"""process_bag's core: camera bags -> the node's PerceptionPipeline -> an output bag, no ROS graph.

    reader thread (read + deserialize)  ->  main thread (batches across time and cameras,
    PerceptionPipeline.process)  ->  writer thread (serialize + write)

The output holds, per camera namespace (``/cam_front/image_raw`` -> ``/cam_front``),
``detections`` (vision_msgs/Detection2DArray) and ``segmentation`` (mono8 sensor_msgs/Image), with
the input's header and log time, exactly what perception_node publishes for the same frame.
Frames that fail are counted by reason and get no output, as in the node.
"""

import collections
import csv
import json
import logging
import pathlib
import queue
import threading
import time

from dali_trt_ros.bags import messages
from dali_trt_ros.bags.io import (BagError, BagWriter, camera_namespace, deserialize,
                                  open_reader, output_topic, select_connections)
from dali_trt_ros.bags.typestore import DETECTIONS, IMAGE, LABEL_INFO

LOG = logging.getLogger(__name__)
DEFAULT_MODELS = ('ssd_mobilenetv2_oidv4', 'selfie_segmentation')
_END = object()


def summary_path(output):
    """Where the JSON summary of an output bag goes: next to it, `<output>.summary.json`."""
    output = pathlib.Path(output)
    return output.with_name(output.name + '.summary.json')


def frames_csv_path(output):
    """Per-frame CSV next to the output bag."""
    output = pathlib.Path(output)
    return output.with_name(output.name + '.frames.csv')


class _Reader(threading.Thread):
    """Reads and deserializes camera messages ahead of the models (bounded queue)."""

    def __init__(self, reader, connections, depth):
        super().__init__(name='bag_reader', daemon=True)
        self.reader, self.connections = reader, connections
        self.items = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def run(self):
        try:
            for connection, timestamp, data in self.reader.messages(self.connections):
                if self.stop.is_set():
                    break
                msg = deserialize(connection, data, self.reader.path, timestamp)
                self.items.put((connection.topic, timestamp, msg))
        except BagError as error:
            self.items.put(error)
        except Exception as error:  # rosbags raises its own errors on damaged chunks
            self.items.put(BagError(f'bag {self.reader.path}: reading stopped ({error}); the '
                                    'file is truncated or corrupt'))
        self.items.put(_END)


class _Writer(threading.Thread):
    """Owns the output bag: creates, writes and closes it in one thread (sqlite3 insists).

    The models never wait on serialization or the disk; ``close`` flushes what is queued.
    """

    def __init__(self, open_writer, depth):
        super().__init__(name='bag_writer', daemon=True)
        self._open_writer = open_writer
        self.items = queue.Queue(maxsize=depth)
        self.ready = threading.Event()
        self.writer = None
        self.error = None

    def run(self):
        try:
            self.writer = self._open_writer()
        except Exception as error:  # BagError (output exists) or OSError
            self.error = error
        self.ready.set()
        if self.writer is None:
            return
        while True:
            item = self.items.get()
            if item[0] == 'finish':
                finish = item[1]
                if self.error is not None:
                    finish = dict(finish, complete=False, reason=f'writing failed: {self.error}')
                self.writer.finish(**finish)
                return
            if self.error is None:
                try:
                    self.writer.write(*item[1])
                except Exception as error:  # disk full etc.: reported by the main thread
                    self.error = error

    def write(self, *args):
        """Queue one message (topic, type, log time, message) for writing."""
        self.items.put(('write', args))

    def close(self, **finish):
        """Flush the queue, then close the bag with :meth:`BagWriter.finish` arguments."""
        self.items.put(('finish', finish))
        self.join()


# perception_node's parameter defaults (score_threshold, nms_iou_threshold, mask_threshold): the
# offline results equal the live node's only with the same thresholds.
NODE_THRESHOLDS = {'score': 0.4, 'nms_iou': 0.5, 'mask': 0.5}


def build_pipeline(models=DEFAULT_MODELS, batch_size=8, backend='onnxruntime',
                   providers=('cpu',), device='auto', device_id=0, thresholds=None,
                   precision='fp32', postprocess='auto'):
    """Build the node's PerceptionPipeline for offline use, `batch_size` frames a call."""
    from dali_trt_ros.perception import PerceptionPipeline

    pipeline = PerceptionPipeline.from_models(
        list(models), backend=backend, providers=tuple(providers), device=device,
        device_id=device_id, max_batch=max(1, int(batch_size)), precision=precision,
        postprocess=postprocess)
    try:
        pipeline.set_thresholds(**dict(NODE_THRESHOLDS, **(thresholds or {})))
    except Exception:
        pipeline.close()
        raise
    return pipeline


class BagProcessor:
    """Runs one PerceptionPipeline over camera bags, batching frames across time and cameras."""

    def __init__(self, pipeline, batch_size=8, write_masks=True, thresholds=None):
        self.pipeline = pipeline
        self.batch_size = max(1, int(batch_size))
        self.write_masks = write_masks
        # The node's choice: the first detector feeds "detections", the first segmenter
        # "segmentation"; their LabelInfo is written once per camera, as the node latches it.
        self.detector = next((m for m in pipeline.models if not m.is_segmentation), None)
        self.segmenter = next((m for m in pipeline.models if m.is_segmentation), None)
        self.thresholds = dict(NODE_THRESHOLDS, **(thresholds or {}))
        self._labelled = set()

    def process(self, input_path, output_path, topics=None, storage='mcap', overwrite=False,
                progress=False):
        """Process one bag; return the summary dict (also written next to the output).

        Raises BagError before creating any output when the bag or a topic is unusable. On
        Ctrl-C or a read error mid-way, the output is closed readable but marked partial, the
        summary says ``complete: false`` and the exception propagates.
        """
        reader = open_reader(input_path)
        try:
            connections = select_connections(reader, topics)
            total = sum(c.msgcount for c in connections)
            sink = _Writer(lambda: BagWriter(output_path, storage=storage, overwrite=overwrite),
                           depth=8 * self.batch_size)
            sink.start()
            sink.ready.wait()
            if sink.writer is None:
                raise sink.error if isinstance(sink.error, BagError) else BagError(
                    f'output {output_path}: cannot be created ({sink.error})')
            stats = _Stats(input_path, output_path, [c.topic for c in connections], total,
                           self.batch_size)
            status = 'interrupted'
            try:
                self._run(reader, connections, sink, stats, progress)
                status = 'complete'
            except KeyboardInterrupt:
                stats.reason = 'interrupted (Ctrl-C)'
                raise
            except BagError as error:
                stats.reason = str(error)
                status = 'failed'
                raise
            finally:
                sink.close(complete=status == 'complete', reason=stats.reason,
                           extra={'frames_in': stats.frames_in,
                                  'frames_out': stats.frames_out})
                if status == 'complete' and sink.error is not None:
                    status, stats.reason = 'failed', f'writing failed: {sink.error}'
                stats.finish(status)
                stats.write(summary_path(output_path), frames_csv_path(output_path))
            if status != 'complete':
                raise BagError(f'output {output_path}: {stats.reason}')
        finally:
            reader.close()
        return stats.summary

    def _run(self, reader, connections, sink, stats, progress):
        source = _Reader(reader, connections, depth=4 * self.batch_size)
        bar = _progress_bar(stats.total, progress)
        source.start()
        try:
            batch = []
            while True:
                item = source.items.get()
                if isinstance(item, BagError):
                    raise item
                if item is _END:
                    break
                batch.append(item)
                if len(batch) == self.batch_size:
                    self._process_batch(batch, sink, stats, bar)
                    batch = []
                if sink.error is not None:
                    break
            if batch and sink.error is None:
                self._process_batch(batch, sink, stats, bar)
        finally:
            source.stop.set()
            _drain(source.items)
            if bar is not None:
                bar.close()
        if sink.error is not None:
            raise BagError(f'output {stats.summary["output"]}: writing failed ({sink.error})')

    def _process_batch(self, batch, sink, stats, bar):
        started = time.perf_counter()
        frames = [messages.frame_of(msg) for _, _, msg in batch]
        results = self.pipeline.process(frames)
        stats.compute_s += time.perf_counter() - started
        for (topic, timestamp, msg), result in zip(batch, results):
            namespace = camera_namespace(topic)
            stats.frames_in += 1
            if result.error is not None:
                stats.failed(topic, msg, result.error)
                continue
            if namespace not in self._labelled:
                self._write_label_info(sink, namespace, timestamp, msg.header)
            for name, error in result.model_errors.items():
                stats.model_failed(topic, msg, name, error)
            detections = (result.detections.get(self.detector.name) if self.detector
                          else None)
            segmentation = (result.segmentations.get(self.segmenter.name) if self.segmenter
                            else None)
            if segmentation is not None and self.write_masks:
                mask = messages.image(msg.header, segmentation.label_map, messages.MONO8)
                sink.write(output_topic(namespace, 'segmentation'), IMAGE, timestamp, mask)
            if detections is not None:
                sink.write(output_topic(namespace, 'detections'), DETECTIONS, timestamp,
                           messages.detections(msg.header, detections))
            stats.processed(topic, msg, detections, segmentation)
        LOG.debug('batch of %d frames done (%d/%d)', len(batch), stats.frames_in, stats.total)
        if bar is not None:
            bar.update(len(batch))

    def _write_label_info(self, sink, namespace, timestamp, head):
        self._labelled.add(namespace)
        stamp_only = messages.header(messages.stamp_ns(head), '')
        for model, topic, threshold in (
                (self.detector, 'label_info', self.thresholds['score']),
                (self.segmenter, 'segmentation/label_info', self.thresholds['mask'])):
            if model is not None:
                sink.write(output_topic(namespace, topic), LABEL_INFO, timestamp,
                           messages.label_info(stamp_only, model.description.labels,
                                               threshold))


def _drain(items):
    while True:
        try:
            items.get_nowait()
        except queue.Empty:
            return


def _progress_bar(total, enabled):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit='frame', desc='process_bag', dynamic_ncols=True)


class _Stats:
    """Counts, per-class detections and per-frame rows for the summary JSON and CSV."""

    def __init__(self, input_path, output_path, topics, total, batch_size):
        self.summary = {'input': str(input_path), 'output': str(output_path), 'topics': topics,
                        'batch_size': batch_size}
        self.total = total
        self.frames_in = self.frames_out = 0
        self.errors = collections.Counter()
        self.per_class = collections.Counter()
        self.mask_fraction_sum = collections.defaultdict(float)
        self.rows = []
        self.reason = ''
        self.compute_s = 0.0
        self.started = time.perf_counter()

    def processed(self, topic, msg, detections, segmentation):
        self.frames_out += 1
        labels = list(detections.labels) if detections is not None else []
        if detections is None and segmentation is None:
            self.frames_out -= 1  # every model failed on it: nothing was written
        self.per_class.update(labels)
        foreground = 0.0
        if segmentation is not None:
            foreground = float((segmentation.label_map != 0).mean())
            self.mask_fraction_sum[topic] += foreground
        self.rows.append({'topic': topic, 'stamp_ns': messages.stamp_ns(msg.header),
                          'frame_id': msg.header.frame_id, 'status': 'ok',
                          'detections': len(labels), 'labels': ' '.join(labels),
                          'mask_foreground': round(foreground, 6)})

    def model_failed(self, topic, msg, name, error):
        self.errors[f'{name}.{getattr(error, "reason", "error")}'] += 1
        LOG.warning('%s frame %d: model %s failed, its output is not written: %s', topic,
                    messages.stamp_ns(msg.header), name, error)

    def failed(self, topic, msg, error):
        self.errors[error.reason] += 1
        LOG.warning('%s frame %d skipped: %s', topic, messages.stamp_ns(msg.header), error)
        self.rows.append({'topic': topic, 'stamp_ns': messages.stamp_ns(msg.header),
                          'frame_id': msg.header.frame_id, 'status': error.reason,
                          'detections': 0, 'labels': '', 'mask_foreground': ''})

    def finish(self, status):
        wall = time.perf_counter() - self.started
        self.summary.update({
            'complete': status == 'complete', 'status': status, 'reason': self.reason,
            'frames_total': self.total, 'frames_in': self.frames_in,
            'frames_out': self.frames_out, 'frames_failed': sum(self.errors.values()),
            'errors': dict(self.errors), 'detections_per_class': dict(self.per_class),
            'wall_s': round(wall, 3), 'frames_per_s': round(self.frames_in / wall, 2)
            if wall > 0 else 0.0, 'compute_s': round(self.compute_s, 3)})

    def write(self, summary_file, csv_file):
        summary_file.write_text(json.dumps(self.summary, indent=2) + '\n')
        with open(csv_file, 'w', newline='') as stream:
            fields = ['topic', 'stamp_ns', 'frame_id', 'status', 'detections', 'labels',
                      'mask_foreground']
            table = csv.DictWriter(stream, fieldnames=fields)
            table.writeheader()
            table.writerows(self.rows)
