"""Starting a local Ray whose workers stream offline data in the least memory (``start_streaming_ray``).

Ray starts one worker process per CPU, in the environment Ray itself was started in, and
Ray Data's file sampling runs its tasks in these. The stream's read workers need
``block_cast.WORKER_ENV`` (an allocator that gives freed memory back). Passed per task, that
environment makes Ray start a second set of workers beside the first, which the sampling has
meanwhile grown and which then sit idle. Ray started in that environment runs every task in
its first workers, and the reader passes no environment of its own
(``workers_have_stream_env``).

The offline algorithms start Ray this way when they stream and no Ray runs yet; a user who
starts Ray first gets the same by calling ``start_streaming_ray`` instead of ``ray.init``.
"""

from __future__ import annotations

import logging
import os

from marl_arena.offline.block_cast import WORKER_ENV

logger = logging.getLogger(__name__)

_started_on_node: str | None = None
"""The node id of the Ray that ``start_streaming_ray`` started last (a new Ray has a new id)."""


def start_streaming_ray(num_cpus: int | None = None) -> bool:
    """Start a local Ray for streaming offline data, unless this process is connected to one;
    True if this call started it.

    ``num_cpus``: Ray's CPUs (default: all of them), one worker process each. A learner that
    trains in the driver is not among them, so a stream that feeds one such learner needs as
    many as keep it fed, often one.
    """
    import ray

    from marl_arena.runners.resources import ensure_ray  # here: the runners import the offline writer

    global _started_on_node
    if ray.is_initialized():
        return False
    # Ray's processes, and the workers they start, inherit this process's environment as it is
    # while Ray starts; this process's own is left as it was.
    saved = {name: os.environ.get(name) for name in WORKER_ENV}
    os.environ.update(WORKER_ENV)
    try:
        ensure_ray(num_cpus=num_cpus)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    _started_on_node = ray.get_runtime_context().get_node_id()
    logger.info("started Ray for streaming: %s CPUs, workers with %s", ray.cluster_resources().get("CPU"), WORKER_ENV)
    return True


def workers_have_stream_env() -> bool:
    """Whether the running Ray's workers were started with ``WORKER_ENV`` (by ``start_streaming_ray``)."""
    import ray

    return ray.is_initialized() and _started_on_node == ray.get_runtime_context().get_node_id()
