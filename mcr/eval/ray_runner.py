"""`mcr eval SUITE --ray [ADDRESS]`: the suite sharded over a Ray cluster, with video affinity.

Built on Ray (actors, ``ray.wait``); no scheduler of our own beyond the
placement rule. Each worker is a Ray actor holding its own policies and model
sessions (the runner's ``_Agents``), and runs the runner's own ``run_task``
— so a record from a worker is the record a local run writes.

* **Affinity**: all tasks about one video go to one worker (videos are dealt
  largest group first to the least-loaded worker), so its model session's
  cached video prefix and the video's tool cache serve every question about
  it. ``placement="random"`` deals tasks at random instead (to measure what
  affinity saves).
* **Workdirs per video** (``OUT/work/v-<hash>/``): checkpoints and tool
  caches belong to the video, not the worker, so no two processes write one
  SQLite file, and ``--resume`` on a restarted (or resized) cluster finds a
  half-finished episode wherever its video lands.
* **In order**: records are appended to ``results.jsonl`` in suite order as
  soon as every earlier task has one; the report is the local run's.
* **Retries**: a task whose record is an error, or whose worker died (the
  actor is replaced), runs once more; then its error is recorded. Each worker
  has one call in flight (its queue is kept here), so a death is charged to
  the task that was running, never to the tasks waiting behind it.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from mcr.eval import manifest as manifest_mod
from mcr.eval.records import RESULTS_FILE, TaskRecord, append_record, read_records
from mcr.eval.runner import EvalInputError, EvalOptions, RunSummary, load_suite, prepare_out, task_ids
from mcr.task import TaskSpec

__all__ = ["run_suite_ray", "plan_placement", "video_key", "RaySummary"]

Placement = Literal["affinity", "random"]


class RaySummary(RunSummary):
    """A run's summary plus where each task ran."""

    worker_of: dict[str, int] = Field(default_factory=dict, description="task id -> worker index")
    pid_of: dict[str, int] = Field(default_factory=dict, description="task id -> worker process id")
    retried: list[str] = Field(default_factory=list, description="tasks run a second time")


def video_key(task: TaskSpec) -> str:
    """The video a task is about (its resolved path): the unit of affinity."""
    return str(Path(task.video).expanduser().resolve())


def _video_dir(task: TaskSpec) -> str:
    key = video_key(task)
    return f"v-{Path(key).stem}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def plan_placement(tasks: list[TaskSpec], workers: int, placement: Placement = "affinity",
                   seed: int = 0) -> list[int]:
    """The worker of each task. Affinity deals whole videos, largest first, to the least-loaded worker."""
    if workers < 1:
        raise EvalInputError(f"--workers {workers}: give at least 1")
    if placement == "random":
        rng = random.Random(seed)
        return [rng.randrange(workers) for _ in tasks]
    groups: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        groups.setdefault(video_key(task), []).append(i)
    load = [0] * workers
    out = [0] * len(tasks)
    for members in sorted(groups.values(), key=lambda m: (-len(m), m[0])):
        w = min(range(workers), key=lambda k: (load[k], k))
        load[w] += len(members)
        for i in members:
            out[i] = w
    return out


def _worker_class():
    import ray

    @ray.remote(num_cpus=1, max_restarts=0)
    class EvalWorker:
        """One shard's runner: its own policies and sessions, kept across its tasks."""

        def __init__(self, out: str, mode: str, judge: str | None):
            from mcr.eval.judges import resolve_judge
            from mcr.eval.runner import _Agents

            self.out, self.mode = Path(out), mode
            self.described: dict[str, Any] = {}
            self.agents = _Agents(self.out / "work", self._remember)
            self.judge = resolve_judge(judge)

        def _remember(self, key: str, policy: Any) -> None:
            self.described[key] = manifest_mod.describe_policy(policy)

        def run(self, task: TaskSpec, task_id: str, index: int) -> tuple[dict[str, Any], dict[str, Any], int]:
            from mcr.eval.runner import run_task

            self.agents.workdir = self.out / "work" / _video_dir(task)
            record = run_task(self.agents, task, task_id, index, self.mode, self.out / "traces", self.judge)
            described, self.described = self.described, {}
            return record.model_dump(mode="json"), described, os.getpid()

    return EvalWorker


def _init_ray(address: str | None, workers: int) -> bool:
    """Connect (``address``: ``auto``, ``host:port``, ``ray://...``) or start a local cluster. Returns True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address in (None, "", "local"):
        ray.init(num_cpus=workers, **kwargs)
        return True
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EvalInputError(f"--ray {address}: cannot connect to the Ray cluster ({exc}); "
                             "start one with `ray start --head`, or give --ray with no address for a local one") from None
    return False


def _died(error: Exception) -> bool:
    import ray.exceptions as rex

    return isinstance(error, (rex.RayActorError, rex.WorkerCrashedError, rex.ObjectLostError))


def run_suite_ray(options: EvalOptions, address: str | None = None, workers: int = 2,
                  placement: Placement = "affinity", report: bool = True) -> RaySummary:
    """Run ``options.suite`` over Ray (see the module docstring); same files and report as a local run.

    Raises:
        EvalInputError: bad options, OUT holds another run, the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise EvalInputError("--ray needs Ray: pip install 'internvideo3-mcr[scale]' (or pip install ray)") from None

    options = options.model_copy(update={"out": options.out.resolve()})  # workers may run elsewhere
    tasks = load_suite(options)
    ids = task_ids(tasks)
    manifest = prepare_out(options, tasks)
    out = options.out
    # As the local runner: --resume skips tasks that are done and tries those that raised again.
    finished = {r.task_id for r in read_records(out) if r.status == "done"} if options.resume else set()
    todo = [i for i, task_id in enumerate(ids) if task_id not in finished]
    assign = plan_placement([tasks[i] for i in todo], workers, placement)
    worker_of = {ids[i]: w for i, w in zip(todo, assign)}
    started = _init_ray(address, workers)
    Worker = _worker_class()
    actors: dict[int, Any] = {}

    def actor(w: int) -> Any:
        if w not in actors:
            actors[w] = Worker.remote(str(out), options.mode, options.judge)
        return actors[w]

    # One call in flight per worker (its queue is here), so a worker's death is charged to the
    # task it was running, never to tasks still waiting for it.
    queues: dict[int, list[tuple[int, int]]] = {}
    for i in todo:
        queues.setdefault(worker_of[ids[i]], []).append((i, 0))
    pending: dict[Any, tuple[int, int, int, Any]] = {}  # future -> (task index, attempt, worker, actor)

    def submit_next(w: int) -> None:
        if queues.get(w):
            i, attempt = queues[w].pop(0)
            a = actor(w)
            pending[a.run.remote(tasks[i], ids[i], i)] = (i, attempt, w, a)

    for w in list(queues):
        submit_next(w)
    done: dict[int, TaskRecord] = {}
    pid_of: dict[str, int] = {}
    retried: list[str] = []
    order, cursor, ran = list(todo), 0, 0
    try:
        while pending:
            (future,), _ = ray.wait(list(pending), num_returns=1)
            i, attempt, w, a = pending.pop(future)
            try:
                data, described, pid = ray.get(future)
                record = TaskRecord.model_validate(data)
                pid_of[ids[i]] = pid
                if described:
                    manifest.setdefault("models", {}).update(described)
                    manifest_mod.write_manifest(out, manifest)
            except Exception as exc:  # noqa: BLE001 - a dead worker, or a task that broke Ray itself
                if not _died(exc):
                    raise
                actors.pop(w, None)  # the next call starts a new actor
                record = _died_record(tasks[i], ids[i], i, options.mode, exc)
            if record.status == "error" and attempt == 0:
                retried.append(ids[i])
                queues[w].insert(0, (i, 1))
                submit_next(w)
                continue
            submit_next(w)
            done[i] = record
            while cursor < len(order) and order[cursor] in done:  # append in suite order
                append_record(out / RESULTS_FILE, done[order[cursor]])
                cursor += 1
                ran += 1
    finally:
        for a in actors.values():
            ray.kill(a)
        if started:
            ray.shutdown()
    if (out / "work" / "artifacts").exists() and not any((out / "work" / "artifacts").iterdir()):
        shutil.rmtree(out / "work" / "artifacts", ignore_errors=True)
    records = [r for r in read_records(out) if r.task_id in set(ids)]
    summary = RaySummary(out=out, ran=ran, skipped=len(tasks) - len(todo), records=records,
                         worker_of=worker_of, pid_of=pid_of, retried=retried)
    if report:
        from mcr.eval.report import write_report

        summary.report = write_report(out, records, manifest)
    return summary


def _died_record(task: TaskSpec, task_id: str, index: int, mode: str, exc: Exception) -> TaskRecord:
    from mcr.eval.runner import _base_record

    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return TaskRecord(**_base_record(task, task_id, index, mode), status="error", error_type="WorkerDied",  # type: ignore[arg-type]
                      error=f"the Ray worker running this task died: {message}", correct=False,
                      thread_id=f"{mode}-{task_id}".replace("#", "-"))
