"""Several bags: find them, name their outputs, process them in parallel here or on Ray.

One job per bag. Locally a process pool (``--jobs N``) runs them; on a cluster Ray schedules
them (``--ray-address``): one task per bag with the GPUs/CPUs it asks for, retried by Ray on
worker failure. Each job builds its own PerceptionPipeline in its own process.
"""

import dataclasses
import glob
import pathlib

from dali_trt_ros.bags.io import BagError, is_bag

OUTPUT_SUFFIX = '_perception'


def expand_inputs(patterns):
    """Bag folders named by paths or globs; a folder of bags stands for every bag inside it."""
    bags = []
    for pattern in patterns:
        if not glob.has_magic(pattern):
            path = pathlib.Path(pattern)
            if is_bag(path) or not path.is_dir():
                bags.append(path)  # named explicitly; a missing path fails with its message
                continue
            found = _not_outputs(p.parent for p in path.glob('*/metadata.yaml'))
            if not found:
                raise BagError(f'bag {path}: not a rosbag2 folder and holds no bag folders')
            bags.extend(found)
            continue
        found = _not_outputs(pathlib.Path(m) for m in glob.glob(pattern) if is_bag(m))
        if not found:
            raise BagError(f'bag {pattern}: the pattern matches no rosbag2 folder')
        bags.extend(found)
    return bags


def _not_outputs(paths):
    """Sorted bag folders, leaving out this tool's own outputs (<bag>_perception)."""
    return sorted(p for p in paths if not p.name.endswith(OUTPUT_SUFFIX))


def output_for(bag, output_prefix=None):
    """Output bag of an input: next to it, or under `output_prefix`, named <bag>_perception."""
    bag = pathlib.Path(bag)
    name = bag.name + OUTPUT_SUFFIX
    return pathlib.Path(output_prefix) / name if output_prefix else bag.with_name(name)


@dataclasses.dataclass
class Job:
    """Everything one worker needs to process one bag (picklable)."""

    input: str
    output: str
    models: tuple
    batch_size: int = 8
    backend: str = 'onnxruntime'
    providers: tuple = ('cpu',)
    device: str = 'auto'
    device_id: int = 0
    topics: tuple = None
    storage: str = 'mcap'
    overwrite: bool = False
    write_masks: bool = True
    thresholds: dict = None
    precision: str = 'fp32'
    postprocess: str = 'auto'

    def pipeline(self):
        """Build this job's PerceptionPipeline."""
        from dali_trt_ros.bags.process import build_pipeline

        return build_pipeline(self.models, self.batch_size, self.backend, self.providers,
                              self.device, self.device_id, self.thresholds, self.precision,
                              self.postprocess)


def check_job(job):
    """Open the job's bag and check its topics now, before any model loads (BagError)."""
    from dali_trt_ros.bags.io import open_reader, select_connections

    reader = open_reader(job.input)
    try:
        select_connections(reader, list(job.topics) if job.topics else None)
    finally:
        reader.close()


def process_job(job, progress=False):
    """Process one bag in this process and return its summary; errors propagate."""
    from dali_trt_ros.bags.process import BagProcessor

    pipeline = job.pipeline()
    try:
        return BagProcessor(pipeline, job.batch_size, job.write_masks, job.thresholds).process(
            job.input, job.output, topics=list(job.topics) if job.topics else None,
            storage=job.storage, overwrite=job.overwrite, progress=progress)
    finally:
        pipeline.close()


def run_job(job, progress=False):
    """Process one bag in this process; return its summary (errors as a failed summary)."""
    from dali_trt_ros.errors import PerceptionError

    try:
        return process_job(job, progress)
    except PerceptionError as error:
        return {'input': job.input, 'output': job.output, 'complete': False,
                'status': 'failed', 'reason': str(error)}


def run_local(jobs, workers):
    """Run jobs in a pool of `workers` processes; summaries in job order."""
    import concurrent.futures
    import multiprocessing

    if workers <= 1 or len(jobs) == 1:
        return [run_job(job, progress=len(jobs) == 1) for job in jobs]
    context = multiprocessing.get_context('spawn')  # no forked ONNX Runtime / DALI threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                mp_context=context) as pool:
        return list(pool.map(run_job, jobs))


def run_ray(jobs, address, gpus_per_task=0.0, cpus_per_task=1.0, max_retries=2):
    """Run one Ray task per job on the cluster at `address`; summaries in job order.

    Uses a Ray instance already initialized in this process when there is one (tests start a
    local one); otherwise connects with ray.init(address=...) ('auto', 'HOST:PORT', or
    'local' to start one here).
    """
    import ray

    started_here = False
    if not ray.is_initialized():
        ray.init(address=None if address == 'local' else address, include_dashboard=False,
                 log_to_driver=False)
        started_here = True
    try:
        task = ray.remote(num_gpus=gpus_per_task, num_cpus=cpus_per_task,
                          max_retries=max_retries)(run_job)
        return ray.get([task.remote(job) for job in jobs])
    finally:
        if started_here:
            ray.shutdown()
