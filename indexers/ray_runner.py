"""Index runs whose decoding and encoding run on a Ray cluster (`index --ray [ADDRESS]`).

The walk, the change detection and every catalog write stay with the Indexer on the machine
that runs the command (indexers/pipeline.py); only the files to encode go to Ray Data, as
rows of a dataset mapped by `map_batches` over an actor pool. Each actor loads the models
once and runs the local pipeline's own per-file code (pipeline.encode_files: the Segmenter
and encode_segments), so a file yields the same segments and vectors on the cluster as here.

Workers read the files by path: the library must be mounted at the same path on every
machine (docs/scale.md says why not bytes from the driver). Before anything is written, one
probe per machine checks that it can import Trove's requirements and read every root.

A worker that dies mid-batch has its batch retried by Ray (the actor restarts); files whose
batch still fails are tried once more one per batch, and a file that kills its worker each
time is recorded as failed with that reason, never retried forever.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import pickle
import socket
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexers.pipeline import FileResult, encode_files
from search.decode.isolation import IsolatedDecoder
from search.decode.kinds import FoundFile
from search.errors import BadFileError, TroveError
from search.models.encoders import ROLE_SPACE
from search.segments import OPTIONAL_ROLES, REQUIRED_ROLES, Segmenter, SegmentSettings
from search.testhooks import crash_point, pause_point

log = logging.getLogger(__name__)

# `--ray` alone: a Ray instance of this machine, started for the run and stopped after it.
LOCAL = "local"
# CPUs an actor aims for on a large machine: torch's matrix products scale to a few threads,
# and fewer, larger actors hold fewer copies of the models in memory.
CPUS_PER_ACTOR = 4.0
# Times Ray retries a batch whose actor died (the actor restarts each time).
TASK_RETRIES = 2
# What a worker needs to decode and encode (the probe imports each: a missing one is named).
NEEDED_MODULES = (
    "numpy",
    "torch",
    "open_clip",
    "transformers",
    "PIL",
    "av",
    "soundfile",
    "librosa",
    "pebble",
    "pypdf",
    "search.segments",
    "indexers.pipeline",
)
# Environment a worker must share with the driver: precision (TROVE_PRECISION), offline
# model lookup and weight folders (HF_*, TRANSFORMERS_OFFLINE).
FORWARDED_ENV_PREFIXES = ("TROVE_", "HF_", "TRANSFORMERS_")
_ROOT = Path(__file__).resolve().parent.parent
NOTHING_CHANGED = "Nothing was indexed or changed."


@dataclass(frozen=True)
class PoolPlan:
    """How many encoding actors, and each one's share of a machine."""

    actors: int
    cpus_per_actor: float
    gpus_per_actor: float


def plan_pool(nodes: Sequence[tuple[float, float]]) -> PoolPlan:
    """The actor pool for a cluster of machines given as (CPUs, GPUs) each.

    Each machine keeps a slice of a CPU free (half of one below 4 CPUs, else one) for Ray
    Data's own tasks and the driver's reads: on a 2-core machine, two actors at one CPU each
    starved Ray Data's read task and the run hung ("requested 3/2 CPU"). With GPUs, one actor
    per GPU. Without, an actor per CPUS_PER_ACTOR free CPUs, and at least two, so that one
    decodes while the other encodes. Every actor gets the smallest machine's share, so each
    fits on any machine of the cluster.
    """
    gpu_nodes = [(c, int(g)) for c, g in nodes if g >= 1]
    if gpu_nodes:
        actors = sum(g for _, g in gpu_nodes)
        share = min(min(CPUS_PER_ACTOR, _free_cpus(c) / g) for c, g in gpu_nodes)
        return PoolPlan(actors, max(share, 0.25), 1.0)
    cpu_nodes = [_free_cpus(c) for c, _ in nodes if _free_cpus(c) > 0]
    if not cpu_nodes:
        raise TroveError(
            "The Ray cluster offers no CPU or GPU to run Trove's encoders on (ray status lists "
            f"what its machines offer). {NOTHING_CHANGED}"
        )
    per_node = [max(1, round(free / CPUS_PER_ACTOR)) for free in cpu_nodes]
    if sum(per_node) == 1:
        per_node = [2]
    share = min(free / n for free, n in zip(cpu_nodes, per_node, strict=True))
    return PoolPlan(sum(per_node), min(share, CPUS_PER_ACTOR), 0.0)


def _free_cpus(cpus: float) -> float:
    return cpus - (0.5 if cpus < 4 else 1.0)


def check_address(address: str) -> str:
    """`address` as `--ray` takes it (local, auto, ray://HOST:PORT or HOST:PORT), else a
    TroveError saying what it takes."""
    if address in (LOCAL, "auto") or address.startswith("ray://"):
        return address
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        return address
    raise TroveError(
        f"--ray takes a cluster address, not {address!r}: nothing (a Ray instance on this "
        "machine), `auto` (the cluster this machine belongs to), ray://HEAD:10001 (Ray "
        "Client) or HEAD:6379. Library folders go before --ray: "
        "`python app.py index ~/Pictures --ray`."
    )


def _unreachable(address: str, why: str) -> TroveError:
    return TroveError(
        f"Cannot reach a Ray cluster at {address}: {why}. Check that the cluster is running "
        "(`ray status` on its head node), that the address and port are right (ray://HEAD:10001 "
        "for Ray Client, HEAD:6379 from a machine of the cluster, `auto` on one of its "
        "machines), and that no firewall is in the way; or index with `--ray` alone for a Ray "
        f"instance on this machine. {NOTHING_CHANGED}"
    )


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once on an address nothing answers at: Ray itself retries a GCS address for
    minutes before it gives up."""
    if address in (LOCAL, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise _unreachable(address, exc.strerror or str(exc) or type(exc).__name__) from None


def runtime_env() -> dict:
    """What a Ray job running Trove's encoders needs: Trove's own code travels to the
    workers (its requirements must be installed there), and the settings in the driver's
    environment travel with it."""
    return {"py_modules": [str(_ROOT / "search"), str(_ROOT / "indexers")], "env_vars": _env()}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


def _probe_node(roots: list[str], modules: Sequence[str]) -> dict:
    """Runs on each machine of the cluster: what it cannot import or read."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{module} ({exc})")
    unreadable = []
    for root in roots:
        try:
            os.listdir(root)
        except OSError as exc:
            unreadable.append(f"{root} ({exc.strerror or exc})")
    return {
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "missing": missing,
        "unreadable": unreadable,
    }


class _EncodeActor:
    """One member of the actor pool: loads the models once, then decodes and encodes the
    batches of files it is given with the local pipeline's own code."""

    def __init__(
        self,
        encoders,
        settings: SegmentSettings,
        skip_roles: frozenset[str],
        spaces: Sequence[str],
        timeout_s: float,
        memory_mib: int,
        decode_workers: int,
        threads: int,
        batch_size: int,
        omp_threads: str | None,
    ) -> None:
        import torch  # deferred: the module is imported by drivers that never encode

        torch.set_num_threads(threads)
        # Ray sets OMP_NUM_THREADS to the actor's CPU share; the decode workers started
        # from here inherit the driver's setting instead, as in a local run: Whisper's
        # transcript changes with it (a word here and there), and it must not.
        if omp_threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp_threads
        self.threads = threads
        self.batch_size = batch_size
        # As many decode workers as the driver's own: speech threads are shared among them,
        # and Whisper's transcript depends on its thread count.
        self.isolation = IsolatedDecoder(
            workers=decode_workers, timeout_s=timeout_s, memory_mib=memory_mib
        )
        self.segmenter = Segmenter(encoders, self.isolation, settings, skip_roles)
        for space in spaces:
            encoders.get(space)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        jobs = [pickle.loads(blob) for blob in batch["job"]]
        for found, _ in jobs:
            crash_point(f"ray.encode:{Path(found.path).name}")
        try:
            results = [
                pickle.dumps(r)
                for r in encode_files(self.segmenter, jobs, self.batch_size, self.threads)
            ]
            error = ""
        except Exception:
            # The local run stops on an encoder error too: the driver raises it (a
            # worker's death, by contrast, is retried).
            results, error = [b""] * len(jobs), traceback.format_exc()
        return {
            "id": batch["id"],
            "result": np.array(results, dtype=object),
            "error": np.array([error] * len(jobs), dtype=object),
        }


class RayRunner:
    """Runs an index run's decoding and encoding on Ray (pipeline.EncodeRunner). Use as a
    context manager around the run: entering connects (or starts a local instance) and
    probes every machine; leaving disconnects (and stops an instance it started)."""

    def __init__(self, address: str = LOCAL, roots: Sequence[str] = ()) -> None:
        self.address = check_address(address)
        self.roots = list(roots)
        self.needed_modules: Sequence[str] = NEEDED_MODULES
        self._connected = False
        self.plan: PoolPlan | None = None

    def __enter__(self) -> RayRunner:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Connect, size the pool from the cluster's resources and probe every machine; a
        TroveError (one paragraph) when the cluster cannot do the run."""
        import ray  # deferred: Ray takes seconds to import; only --ray runs need it

        _check_reachable(self.address)
        if not ray.is_initialized():
            options: dict = {"runtime_env": runtime_env()}
            if not self.address.startswith("ray://"):  # Ray Client takes none of these
                options.update(log_to_driver=False, logging_level=logging.WARNING)
            if self.address == LOCAL:
                options["include_dashboard"] = False
            try:
                ray.init(address=self.address, **options)
            except (ConnectionError, TimeoutError) as exc:
                raise _unreachable(self.address, str(exc).splitlines()[0]) from None
            self._connected = True
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            self.plan = plan_pool(
                [(n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0)) for n in nodes]
            )
            self._probe(ray, nodes)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False

    def _probe(self, ray, nodes: list[dict]) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(num_cpus=0)(_probe_node)
        working = [n for n in nodes if n["Resources"].get("CPU") or n["Resources"].get("GPU")]
        refs = [
            probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(self.roots, self.needed_modules)
            for n in working
        ]
        try:
            reports = ray.get(refs, timeout=300)
        except Exception as exc:
            raise TroveError(
                f"The Ray cluster's workers cannot run Trove's code: {_first_line(exc)}. Every "
                "machine of the cluster needs Trove's requirements (`pip install -r "
                f"requirements.txt`, with Python {sys.version.split()[0]} like this one). "
                f"{NOTHING_CHANGED}"
            ) from None
        for report in reports:
            if report["missing"]:
                raise TroveError(
                    f"Ray workers on {report['host']} (Python {report['python']}) cannot import "
                    f"{', '.join(report['missing'])}. Every machine of the cluster needs "
                    "Trove's requirements: `pip install -r requirements.txt` there, with Python "
                    f"{sys.version.split()[0]} like this one. {NOTHING_CHANGED}"
                )
            if report["unreadable"]:
                raise TroveError(
                    f"Ray workers on {report['host']} cannot read "
                    f"{', '.join(report['unreadable'])}. "
                    "The workers read the files by their path: mount the library at the same "
                    "path on every machine of the cluster (a network share, a mounted bucket), "
                    f"readable by the user Ray runs as. {NOTHING_CHANGED}"
                )

    # -- the run -------------------------------------------------------------------------

    def encode(
        self, jobs: list[tuple[FoundFile, str | None]], segmenter: Segmenter, batch_size: int
    ) -> Iterator[FileResult]:
        """Every job's FileResult as the cluster finishes it: a first pass in batches, a
        second one file per batch for the files whose batch kept killing its worker, and a
        failure for any file that killed it in that pass too."""
        pending = dict(enumerate(jobs))
        for size in (batch_size, 1):
            if pending:
                yield from self._pass(pending, segmenter, batch_size, size)
        attempts = 2 * (TASK_RETRIES + 1)
        for found, _ in pending.values():
            yield (
                found,
                BadFileError(
                    f"the Ray worker decoding or encoding it died each of {attempts} times "
                    "(out of memory, or a crash in a native library); not tried again"
                ),
                None,
            )

    def _pass(
        self,
        pending: dict[int, tuple[FoundFile, str | None]],
        segmenter: Segmenter,
        batch_size: int,
        rows_per_batch: int,
    ) -> Iterator[FileResult]:
        import ray
        import ray.data

        assert self.plan is not None, "RayRunner.start() first"
        # Ray Data sets up its own loggers when imported; its notes ("progress bars
        # disabled", each run's plan) are not for Trove's users, and its errors reach us
        # as exceptions.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the Indexer's bar counts files, cluster-wide
        context.print_on_execution_start = False
        # A batch whose worker died past its retries is dropped here and its files tried
        # again one by one in the next pass (pending keeps them).
        context.max_errored_blocks = -1
        rows = [{"id": i, "job": pickle.dumps(job)} for i, job in pending.items()]
        dataset = ray.data.from_items(
            rows, override_num_blocks=max(1, math.ceil(len(rows) / rows_per_batch))
        )
        kinds = {found.kind for found, _ in pending.values()}
        spaces = sorted(
            {
                space
                for kind in kinds
                for role in (*REQUIRED_ROLES[kind], *OPTIONAL_ROLES[kind])
                if role not in segmenter.skip_roles
                and (space := _role_space(segmenter, role)) is not None
            }
        )
        plan = self.plan
        with warnings.catch_warnings():
            # Ray 2.60 (pinned) names no parameter for an actor pool's retries yet and calls
            # these "deprecated"; without them a poison file would be retried forever.
            warnings.simplefilter("ignore", DeprecationWarning)
            encoded = dataset.map_batches(
                _EncodeActor,
                fn_constructor_kwargs={
                    "encoders": segmenter.encoders,
                    "settings": segmenter.settings,
                    "skip_roles": segmenter.skip_roles,
                    "spaces": spaces,
                    "timeout_s": segmenter.isolation.timeout_s,
                    "memory_mib": segmenter.isolation.memory_mib,
                    "decode_workers": segmenter.isolation.workers,
                    "threads": max(1, round(plan.cpus_per_actor)),
                    "batch_size": batch_size,
                    "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                },
                batch_size=rows_per_batch,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=plan.actors),
                num_cpus=plan.cpus_per_actor,
                num_gpus=plan.gpus_per_actor or None,
                max_restarts=-1,
                max_task_retries=TASK_RETRIES,
                # The driver's settings as they are now (the job's are those it began with).
                runtime_env={"env_vars": _env()},
            )
        try:
            for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
                for i, blob, error in zip(
                    batch["id"], batch["result"], batch["error"], strict=True
                ):
                    if error:
                        raise RuntimeError(f"encoding on the Ray cluster failed:\n{error}")
                    found, decoded, vectors = pickle.loads(blob)
                    if pending.pop(int(i), None) is None:
                        continue  # a retried batch whose first try also came back
                    pause_point("ray.result")
                    if isinstance(decoded, str):
                        yield found, BadFileError(decoded), None
                    else:
                        yield found, decoded, vectors
        except ray.exceptions.RayError as exc:
            raise TroveError(
                f"The Ray cluster could not run Trove's encoders: {_first_line(exc)}. "
                "Everything committed so far is kept; run the same command again to resume."
            ) from None


def _role_space(segmenter: Segmenter, role: str) -> str | None:
    """The space a role's model belongs to, when this run has a model for it."""
    space = ROLE_SPACE[role]
    return space if segmenter.encoders.name(space) else None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
