"""Starting Ray, and fitting the actors a config asks for into the CPUs the cluster has.

Ray queues an actor whose CPUs are not free, silently and forever. A config that asks for
more CPUs than exist is therefore either fitted (every actor's share scaled down to
fractional CPUs, with one warning) or, for GPUs, which cannot be shared that way, refused
at build time with the numbers asked for and available.
"""

from __future__ import annotations

import logging
import math
import os

logger = logging.getLogger(__name__)


def ensure_ray() -> None:
    """Start a local Ray cluster unless one is running in this process already."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=True,
                 logging_level=logging.WARNING, configure_logging=False)


def cluster_resources() -> tuple[float, float]:
    """(CPUs, GPUs) of the running Ray cluster."""
    import ray

    resources = ray.cluster_resources()
    return float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))


def fit_cpus(requests: dict[str, tuple[int, float]], available: float) -> dict[str, float]:
    """CPUs per actor for each group ``name -> (actor count, cpus per actor)``.

    Unchanged when everything fits; otherwise every share is scaled by the same factor
    (Ray accepts fractions below 1, and whole numbers above), with one warning line.
    """
    asked = sum(count * cpus for count, cpus in requests.values())
    if asked <= available or asked == 0:
        return {name: cpus for name, (_, cpus) in requests.items()}
    factor = available / asked
    fitted = {}
    for name, (_, cpus) in requests.items():
        share = cpus * factor
        # Round down: shares that add up to a hair over the cluster leave one actor unplaced.
        fitted[name] = math.floor(share) if share >= 1 else math.floor(share * 10_000) / 10_000
    detail = ", ".join(f"{count} {name} x {cpus:g}" for name, (count, cpus) in requests.items() if count)
    logger.warning(
        "Asked for %g CPUs (%s) but the Ray cluster has %g: sharing them, %s.",
        asked, detail, available,
        ", ".join(f"{fitted[n]:g} CPU per {n}" for n, (c, _) in requests.items() if c),
    )
    return fitted


def check_gpus(num_learners: int, num_gpus_per_learner: float, available: float) -> None:
    """Refuse a config that needs more GPUs than exist, naming both numbers."""
    asked = max(1, num_learners) * num_gpus_per_learner
    if asked > available:
        raise ValueError(
            f"num_gpus_per_learner={num_gpus_per_learner:g} with num_learners={num_learners} asks for "
            f"{asked:g} GPUs, but {available:g} are available. Set num_gpus_per_learner=0 to learn on the CPU."
        )
