"""Starting Ray, and fitting the actors a config asks for into the CPUs the cluster has.

Ray queues an actor whose CPUs are not free, silently and forever. A config that asks for
more CPUs than exist is therefore either fitted (every actor's share scaled down to
fractional CPUs, with one warning) or, for GPUs, which cannot be shared that way, refused
at build time with the numbers asked for and available.

A league runs several algorithms on one cluster, so it divides the cluster among all of
them at once (``divide_resources``): CPUs and GPUs are both shared as fractions, checked to
pack into the nodes, or refused at build time, never left for Ray to queue.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os

logger = logging.getLogger(__name__)

WORKER_NICENESS_VARIABLE = "RAY_worker_niceness"
"""Ray's setting for its workers' nice value; a local cluster started here runs them at the driver's."""


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start a local Ray cluster with ``num_cpus`` CPUs (default: the machine's), or join the one at
    ``address`` ("auto": the one this machine belongs to), unless this process is connected to one already."""
    import ray

    if ray.is_initialized():
        return
    if address is not None:
        ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING, configure_logging=False)
    else:
        # Ray starts its workers at nice 15: the runner actors would then get next to no CPU
        # while the driver's own learner thread (APPO, IMPALA, a league) keeps a core busy.
        os.environ.setdefault(WORKER_NICENESS_VARIABLE, "0")
        ray.init(num_cpus=os.cpu_count() if num_cpus is None else num_cpus, include_dashboard=False,
                 log_to_driver=True, logging_level=logging.WARNING, configure_logging=False)


def node_cpus() -> list[float]:
    """The CPUs of each live node of the running Ray cluster (an actor's share must fit on one node)."""
    import ray

    return [float(node["Resources"].get("CPU", 0.0)) for node in ray.nodes() if node.get("Alive")]


def cluster_resources() -> tuple[float, float]:
    """(CPUs, GPUs) of the running Ray cluster."""
    import ray

    resources = ray.cluster_resources()
    return float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))


_SHARES_PER_UNIT = 10_000  # Ray places fractions of a CPU or GPU down to 1/10,000
_MIN_SHARE = 1 / _SHARES_PER_UNIT


def _scaled_share(share: float, factor: float) -> float:
    """``share * factor`` rounded down to what Ray accepts: a fraction below 1, whole numbers above.

    Down, because shares that add up to a hair over the cluster leave one actor unplaced.
    """
    value = share * factor
    return float(math.floor(value)) if value >= 1 else math.floor(value * _SHARES_PER_UNIT) / _SHARES_PER_UNIT


def fit_cpus(requests: dict[str, tuple[int, float]], available: float) -> dict[str, float]:
    """CPUs per actor for each group ``name -> (actor count, cpus per actor)``.

    Unchanged when everything fits; otherwise every share is scaled by the same factor
    (Ray accepts fractions below 1, and whole numbers above), with one warning line.
    """
    asked = sum(count * cpus for count, cpus in requests.values())
    if asked <= available or asked == 0:
        return {name: cpus for name, (_, cpus) in requests.items()}
    factor = available / asked
    fitted = {name: _scaled_share(cpus, factor) for name, (_, cpus) in requests.items()}
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




@dataclasses.dataclass(frozen=True)
class ActorRequest:
    """``count`` actors (or driver-side learners) of one kind for one owner (a league's trainer)."""

    owner: str
    kind: str
    """"env runner", "evaluation runner", "learner" (Ray actors) or "driver learner" (learns in
    the driver process: it takes no Ray resource, but the driver's CPUs are the cluster's too)."""
    count: int
    cpus: float
    gpus: float = 0.0

    @property
    def placed_by_ray(self) -> bool:
        return self.kind != "driver learner"


@dataclasses.dataclass(frozen=True)
class ResourcePlan:
    """Shares per ``(owner, kind)`` that fit the cluster, and the one line that says how."""

    cpus: dict[tuple[str, str], float]
    gpus: dict[tuple[str, str], float]
    summary: str
    scaled: bool




def _packs(shares: list[float], nodes: list[float]) -> bool:
    """Whether actors of these CPU shares fit the nodes (first fit, largest first)."""
    free = sorted(nodes, reverse=True)
    for share in sorted(shares, reverse=True):
        for i, room in enumerate(free):
            if share <= room + 1e-9:
                free[i] = room - share
                break
        else:
            return False
    return True


def divide_resources(requests: list[ActorRequest], cpus: float, gpus: float,
                     nodes: list[float] | None = None) -> ResourcePlan:
    """Divide a cluster's ``cpus`` and ``gpus`` among every requested actor, or refuse.

    When everything fits, every share is what was asked. Otherwise all CPU shares are
    scaled by one factor (and all GPU shares by another) into fractions Ray can place,
    also checking that the Ray-placed actors pack into the ``nodes``' CPUs, since one actor
    cannot span two nodes. Raises ``ValueError`` naming what was asked and what exists when
    no share can fit (no CPUs at all, GPUs asked of a cluster without any).
    """
    asked_cpus = sum(r.count * r.cpus for r in requests)
    asked_gpus = sum(r.count * r.gpus for r in requests if r.placed_by_ray)
    detail = ", ".join(f"{r.owner}: {r.count} {r.kind} x {r.cpus:g} CPU" + (f" {r.gpus:g} GPU" if r.gpus else "")
                       for r in requests if r.count)
    if asked_cpus > 0 and cpus <= 0:
        raise ValueError(f"Asked for {asked_cpus:g} CPUs ({detail}) but the Ray cluster has {cpus:g}.")
    if asked_gpus > 0 and gpus <= 0:
        raise ValueError(f"Asked for {asked_gpus:g} GPUs ({detail}) but the Ray cluster has none; set "
                         "num_gpus_per_learner=0 to learn on the CPU.")
    gpu_factor = min(1.0, gpus / asked_gpus) if asked_gpus else 1.0
    factor = min(1.0, cpus / asked_cpus) if asked_cpus else 1.0
    for _ in range(50):  # shrink until the Ray-placed shares also pack into the nodes
        cpu_shares = {(r.owner, r.kind): _scaled_share(r.cpus, factor) if factor < 1 else r.cpus for r in requests}
        placed = [cpu_shares[r.owner, r.kind] for r in requests if r.placed_by_ray for _ in range(r.count)]
        if not nodes or _packs(placed, nodes):
            break
        factor *= 0.9
    else:
        raise ValueError(f"Asked for {asked_cpus:g} CPUs ({detail}); no fractional share packs the Ray "
                         f"cluster's nodes with {nodes} CPUs. Use fewer runners or add nodes.")
    for r in requests:
        if r.count and r.cpus > 0 and cpu_shares[r.owner, r.kind] < _MIN_SHARE:
            raise ValueError(f"Asked for {asked_cpus:g} CPUs ({detail}) but the Ray cluster has {cpus:g}: "
                             f"each {r.kind} would get less than {_MIN_SHARE:g} CPU. Use fewer runners.")
    gpu_shares = {(r.owner, r.kind): (_scaled_share(r.gpus, gpu_factor) if gpu_factor < 1 else r.gpus)
                  for r in requests}
    scaled = factor < 1 or gpu_factor < 1
    shares = sorted({(r.kind, cpu_shares[r.owner, r.kind], gpu_shares[r.owner, r.kind])
                     for r in requests if r.count}, key=lambda item: item[0])
    owners = len({r.owner for r in requests})
    how = ", ".join(f"{cpu:g} CPU" + (f" {gpu:g} GPU" if gpu else "") + f" per {kind}" for kind, cpu, gpu in shares)
    summary = (f"{owners} trainer(s) ask for {asked_cpus:g} CPUs" + (f" and {asked_gpus:g} GPUs" if asked_gpus else "")
               + f" of the cluster's {cpus:g} CPUs and {gpus:g} GPUs: "
               + ("sharing them, " if scaled else "it fits, ") + (how or "nothing to place"))
    return ResourcePlan(cpu_shares, gpu_shares, summary, scaled)
