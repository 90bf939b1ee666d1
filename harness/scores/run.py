"""`harness score`: per-document scores of a pool (or of JSONL files), one Parquet file per input shard.

The work is datatrove pipelines: a reader step (`ShardReader`, task r reads input shard r) feeding a writer step
(`ScoreWriter`) that runs every scorer on batches of documents and streams the rows to `part-<r>.parquet`
(written to a temporary name, renamed when the shard is done). Scorers with a whole-pool stage (dedup) run
their stages first. Each stage is a datatrove executor (local: `LocalPipelineExecutor` with tasks and workers;
`ray`; `slurm`: a job array, harness.scores.slurm) whose completion markers (`_logs/<stage>/completions/`) make a
killed run resume per shard. Local and Ray run the stages one after the other and a failed one stops the run with
one message; Slurm gets them as a chain of dependent jobs (recorded in `_logs/slurm-jobs.json`). Task r's output
depends only on shard r, so any number of workers writes the same files.

Output folder:
- `part-NNNNN.parquet`: column `id` (the pool's document id, 32 hex), then each scorer's columns in the order of
  `--scorer` (see `columns` in the manifest, or each field's "doc" metadata), one row per document in shard order;
- `config.json`: the source and scorer configuration (a re-run into the same folder must match it);
- `manifest.json` (written last): that configuration, each part's input shard, row count and sha256, and the
  columns with their descriptions;
- `_work/` (intermediate files of whole-pool stages) and `_logs/` (datatrove's logs, stats and completions).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import doc
from harness.errors import HarnessError, UsageError
from harness.io.files import file_sha256, write_text_atomic
from harness.scores.base import Scorer

try:
    from datatrove.pipeline.base import PipelineStep
except ImportError:  # pragma: no cover - datatrove is a dependency; the message below says how to get it
    PipelineStep = object  # type: ignore[assignment,misc]

EXECUTORS = ("local", "slurm", "ray")
PART = "part-{:05d}.parquet"


@dataclass(frozen=True)
class ScoreSource:
    """What is scored: the input shards, how their lines name a document, and where they come from."""

    name: str
    urls: tuple[str, ...]
    id_field: str = "id"
    text_field: str = "text"
    id_scheme: str = "field"
    storage_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shards": list(self.urls), "id_field": self.id_field,
                "text_field": self.text_field, "id_scheme": self.id_scheme}  # fmt: skip


def resolve_source(source: str) -> ScoreSource:
    """A pool id (the sandbox is generated on first use; DCLM pools must be indexed), or JSONL files/dir/glob."""
    from harness.pools import ensure_pool, pool_names

    if source in pool_names():
        pool = ensure_pool(source)
        s = pool.spec
        return ScoreSource(source, tuple(pool.shards()), s.id_field, s.text_field, s.id_scheme, dict(s.storage_options))
    from harness.io.files import is_jsonl

    path = Path(source)
    files = sorted(str(p) for p in path.iterdir() if is_jsonl(p.name)) if path.is_dir() else sorted(glob.glob(source))
    files = [f for f in files if is_jsonl(f)]
    if not files:
        raise UsageError(
            f"{source!r} is neither a pool ({', '.join(pool_names())}) nor JSONL files (.jsonl, .jsonl.gz, "
            ".jsonl.zst; a file, a folder or a glob) with 'id' and 'text' fields"
        )
    return ScoreSource(source, tuple(files))


class ShardReader(PipelineStep):  # type: ignore[misc]
    """datatrove reader: task `rank` yields the documents of input shard `rank`, with their pool ids."""

    name = "harness shard reader"
    type = "📖 - READER"

    def __init__(self, source: ScoreSource) -> None:
        super().__init__()
        self.source = source

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        import hashlib

        from datatrove.data import Document

        from harness.io.files import open_binary

        src = self.source
        url = src.urls[rank]
        with open_binary(url, src.storage_options) as fh:
            index = 0
            for n, line in enumerate(fh, 1):
                body = line.rstrip(b"\r\n")
                if not body.strip():
                    continue
                try:
                    obj = json.loads(body)
                    text = obj[src.text_field]
                    doc_id = (
                        hashlib.sha256(body).hexdigest()[:32] if src.id_scheme == "sha256-line" else obj[src.id_field]
                    )
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise HarnessError(
                        f"{url}:{n}: not a document line with {src.text_field!r} and an id ({exc})"
                    ) from exc
                self.stat_update("documents")
                yield Document(text=text, id=str(doc_id), metadata={"index": index})
                index += 1


class ScoreWriter(PipelineStep):  # type: ignore[misc]
    """datatrove step: scores batches of documents and streams them to `part-<rank>.parquet` (atomic rename)."""

    name = "harness score writer"
    type = "📊 - SCORE"

    def __init__(self, scorers: Sequence[Scorer], out_dir: str, batch_size: int = 512) -> None:
        super().__init__()
        self.scorers, self.out_dir, self.batch_size = tuple(scorers), out_dir, batch_size
        self.parent_pid = os.getpid()

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        import pyarrow.parquet as pq

        if os.getppid() == self.parent_pid and "torch" in sys.modules:  # a local worker, forked by the executor
            # A worker forked after torch's OpenMP pool ran (a model trained or loaded in the parent) hangs at its
            # first parallel op (seen: the information-pruning ladder row, 30 min in load_state_dict). One thread
            # takes the serial path, and N worker processes then use N cores, not N x the pool's threads.
            sys.modules["torch"].set_num_threads(1)
        schema = score_schema(self.scorers)
        work = Path(self.out_dir) / "_work"
        for scorer in self.scorers:
            scorer.setup(work)
        final = Path(self.out_dir) / PART.format(rank)
        tmp = final.with_name(f".{final.name}.tmp")
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            batch: list[Any] = []
            for doc in data or ():
                batch.append(doc)
                if len(batch) == self.batch_size:
                    writer.write_batch(self._rows(batch, rank, schema))
                    batch = []
            if batch:
                writer.write_batch(self._rows(batch, rank, schema))
        os.replace(tmp, final)
        return iter(())

    def _rows(self, docs: list[Any], rank: int, schema: Any) -> Any:
        import pyarrow as pa

        columns: dict[str, list[Any]] = {"id": [d.id for d in docs]}
        with self.track_time("batch"):
            for scorer in self.scorers:
                columns.update(scorer.score(docs, rank) if docs else {f.name: [] for f in scorer.fields()})
        self.stat_update("scored", value=len(docs))
        return pa.RecordBatch.from_pydict(columns, schema=schema)


def score_schema(scorers: Sequence[Scorer]) -> Any:
    import pyarrow as pa

    fields = [pa.field("id", pa.string(), nullable=False, metadata={"doc": "the pool's document id"})]
    for scorer in scorers:
        fields += scorer.fields()
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise UsageError(f"two scorers write the same column: {names}; give each scorer once")
    return pa.schema(fields)


@dataclass(frozen=True)
class ExecutorOptions:
    """How datatrove runs the tasks: which executor, how many at once, and the cluster settings."""

    kind: str = doc("local (a process pool here), ray (a running Ray cluster) or slurm (job arrays).", default="local")
    workers: int = doc("Tasks run at once (slurm: per stage's job array).", default=1)
    slurm_partition: str = doc("slurm: the partition (empty: the cluster's default, or SBATCH_PARTITION).", default="")
    slurm_time: str = doc("slurm: time limit per array task (empty: the partition's default).", default="")
    cpus_per_task: int = doc("slurm and ray: CPUs per task.", default=1)
    slurm_mem: str = doc("slurm: memory per array task, as sbatch's --mem (empty: the cluster's default).", default="")
    wait: bool = doc("slurm: follow the jobs to their end and finish (else: submit, and re-run once they end).",
                     default=False)  # fmt: skip

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            from harness.errors import unknown_name

            raise unknown_name("executor", self.kind, EXECUTORS)
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_task < 1:
            raise UsageError(f"--cpus-per-task must be at least 1, got {self.cpus_per_task}")


def make_executor(
    opts: ExecutorOptions,
    pipeline: list[Any],
    tasks: int,
    logs: Path | str,
    name: str = "harness-score",
) -> Any:
    """The datatrove executor for one stage (`logs`: its logging folder, a path or fsspec URL; `name`: the Slurm
    job's). The caller runs the stages one after the other (no `depends`: it would wait forever for a failed stage);
    a slurm one is submitted by harness.scores.slurm.run_chain, not by its own `run`."""
    if opts.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        method = "fork" if sys.platform == "linux" else "spawn"  # fork: children inherit our quiet log sink
        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(opts.workers, tasks), logging_dir=str(logs),
                                     start_method=method)  # fmt: skip
    if opts.kind == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(pipeline, tasks=tasks, workers=min(opts.workers, tasks), logging_dir=str(logs),
                                   cpus_per_task=opts.cpus_per_task)  # fmt: skip
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(pipeline, tasks=tasks, time=opts.slurm_time, partition=opts.slurm_partition,
                                 logging_dir=str(logs), cpus_per_task=opts.cpus_per_task, workers=opts.workers,
                                 job_name=name, sbatch_args={"mem": opts.slurm_mem} if opts.slurm_mem else None,
                                 requeue=False, qos="")  # fmt: skip


def connect_ray(address: str = "") -> None:
    """Join the Ray cluster at `address` (else RAY_ADDRESS, else the one `ray start --head` started on this machine)."""
    try:
        import ray
    except ImportError as exc:
        raise HarnessError("--executor ray needs Ray: pip install 'harness[curate]'") from exc
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS", "") or "auto"
    try:
        ray.init(address=target, log_to_driver=False)
    except (ConnectionError, ValueError) as exc:
        raise HarnessError(
            f"no Ray cluster to join at {target!r} ({exc}); start one with `ray start --head`, then give its address "
            "with --ray-address HOST:PORT (or RAY_ADDRESS); a cluster with token authentication also needs "
            "RAY_AUTH_MODE=token here"
        ) from exc


def score(
    source: str | ScoreSource,
    scorers: Sequence[Scorer],
    out: str | Path,
    *,
    executor: ExecutorOptions = ExecutorOptions(),
    batch_size: int = 512,
    progress: Any = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score every document of `source` with `scorers` into `out`; returns the manifest (also written last).

    Re-running the same command resumes: finished shards are kept. `progress`: None, or a rich Progress. With the
    slurm executor the stages are handed to Slurm (harness.scores.slurm; `notify` is told the job ids and states) and
    {"submitted": True, "logs": ...} comes back, unless `executor.wait` followed them to the end.
    """
    if not scorers:
        raise UsageError("give at least one --scorer")
    src = resolve_source(source) if isinstance(source, str) else source
    out = Path(out)
    config = {"source": src.to_dict(), "scorers": [s.config() for s in scorers], "batch_size": batch_size}
    _claim(out, config)
    schema = score_schema(scorers)
    n = len(src.urls)
    stages: list[tuple[str, list[Any], int]] = []
    for scorer in scorers:
        if scorer.global_stage:
            stages += scorer.global_pipelines(ShardReader(src), out / "_work", n)  # type: ignore[attr-defined]
    stages.append(("score", [ShardReader(src), ScoreWriter(scorers, str(out), batch_size)], n))
    if executor.kind == "local":
        for scorer in scorers:
            scorer.preload()
    logs = out / "_logs"
    bars = [(f"score: {name}", tasks, str(logs / name / "completions")) for name, _, tasks in stages]
    with quiet_datatrove_logs(), watch_completions(progress, bars):
        executors = [(name, make_executor(executor, pipeline, tasks, logs / name, name=f"harness-score-{name}"), tasks)
                     for name, pipeline, tasks in stages]  # fmt: skip
        if executor.kind == "slurm":
            from harness.scores.slurm import run_chain

            done = run_chain([(name, ex) for name, ex, _ in executors], logs, what=f"the scoring into {out}",
                             follow=executor.wait, notify=notify or (lambda _m: None),
                             failure=lambda stage, why: _failed(out, stage, why))  # fmt: skip
            if not done:
                return {"submitted": True, "logs": str(logs)}
        for name, ex, tasks in executors if executor.kind != "slurm" else ():
            # One stage after the other, each checked: datatrove's `depends` would wait for a failed stage forever.
            try:
                ex.run()
            except Exception as exc:  # a task failed: its log says why; finished shards stay done
                why = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
                raise _failed(out, name, why) from exc
            if left := ex.get_incomplete_ranks(range(tasks)):
                raise _failed(out, name, f"{len(left)} of its {tasks} tasks did not finish")
    return _write_manifest(out, config, schema, src)


def _failed(out: Path, stage: str, why: str) -> HarnessError:
    return HarnessError(f"scoring stopped in its {stage} stage: {why}. Task logs are in {out / '_logs' / stage / 'logs'}; "
                        "finished shards are kept: fix the cause and re-run the same command to resume")  # fmt: skip


def _claim(out: Path, config: dict[str, Any]) -> None:
    """Create the output folder, or check that an existing one was started with the same configuration."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.json"
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    if path.is_file():
        if path.read_text() != text:
            raise UsageError(
                f"{out} holds scores of another configuration (see {path}); give a new --out, or delete it to restart"
            )
        return
    if any(out.glob(PART.replace("{:05d}", "*"))):
        raise UsageError(f"{out} already holds Parquet files that no config.json describes; give an empty --out")
    write_text_atomic(path, text)


def _write_manifest(out: Path, config: dict[str, Any], schema: Any, src: ScoreSource) -> dict[str, Any]:
    import pyarrow.parquet as pq

    parts = []
    for rank, url in enumerate(src.urls):
        path = out / PART.format(rank)
        if not path.is_file():
            raise HarnessError(f"{path} is missing although its task is marked done; delete {out / '_logs'} and re-run")
        rows = pq.ParquetFile(path).metadata.num_rows
        parts.append({"path": path.name, "input": url, "rows": rows, "sha256": file_sha256(path)})
    manifest = {
        **config,
        "rows": sum(p["rows"] for p in parts),
        "parts": parts,
        "columns": {f.name: (f.metadata or {}).get(b"doc", b"").decode() for f in schema},
    }
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


@contextlib.contextmanager
def quiet_datatrove_logs() -> Iterator[None]:
    """datatrove logs every task at INFO on stderr: keep its warnings only (the task log files keep the rest), and
    not the one about a local logging folder (on one machine that is right; several need a shared one, which the
    docs say)."""
    from loguru import logger

    saved = sys.stderr
    with open(os.devnull, "w") as sink:
        sys.stderr = sink
        logger.remove()
        logger.add(saved, level="WARNING", filter=lambda r: "points to a local filesystem" not in r["message"])
        try:
            yield
        finally:
            sys.stderr = saved
            logger.remove()
            logger.add(sys.stderr, level="WARNING")


@contextlib.contextmanager
def watch_completions(progress: Any, stages: Sequence[tuple[str, int, str]]) -> Iterator[None]:
    """A rich progress bar per (description, tasks, completions folder: datatrove's markers, any fsspec URL),
    polled every half second while the block runs, and once more at its end."""
    import fsspec

    if progress is None:
        yield
        return
    bars = [(progress.add_task(label, total=tasks), folder) for label, tasks, folder in stages]
    stop = threading.Event()

    def update() -> None:
        for bar, folder in bars:
            fs, path = fsspec.core.url_to_fs(folder)
            with contextlib.suppress(FileNotFoundError):
                progress.update(bar, completed=len(fs.ls(path, detail=False)) if fs.exists(path) else 0)

    def poll() -> None:
        while not stop.wait(0.5):
            update()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        update()
