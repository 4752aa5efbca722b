"""Settings read once from the environment; see docs/configuration.md for each variable."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.sessions import SandboxConfig

DEFAULT_PROJECT = "default"
_OFF = {"0", "off", "false", "no"}


def parse_api_keys(raw: str | None) -> dict[str, str]:
    """`key1,key2:proj` -> {key: project}; a key without a project joins the default one."""
    keys: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, project = item.partition(":")
        keys[key.strip()] = project.strip() or DEFAULT_PROJECT
    return keys


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    api_keys: dict[str, str] = field(default_factory=dict)
    max_file_bytes: int = 512 * 1024 * 1024
    # Every request body but an upload's; past it, 413 before the body is held whole.
    max_json_bytes: int = 4 * 1024 * 1024
    # image_url parts may name loopback and link-local hosts (a model server on this
    # machine fetching them would reach this machine's own services, or a cloud's
    # metadata endpoint at 169.254.169.254): off unless a deployment needs it.
    allow_local_image_urls: bool = False
    model_base_url: str | None = None
    model_api_key: str | None = None
    models_config: Path | None = None
    model_timeout: float = 600.0
    requires_action_timeout: int = 600
    lease_seconds: float = 30.0
    worker_poll_seconds: float = 0.5
    poll_after_ms: int = 25
    run_worker: bool = True
    shutdown_grace_seconds: float = 10.0
    sandbox_enabled: bool = True
    # file_search: a Chroma server (production) instead of the embedded index, the
    # default embedding model of new vector stores, and parallel ingestions per process.
    chroma_url: str | None = None
    embedding_model: str = "all-MiniLM-L6-v2"
    # Further models clients may name in a store's `embedding_model` (names or paths);
    # nothing outside these, embedding_model and the bundled model is ever loaded.
    embedding_models: tuple[str, ...] = ()
    # Files one process ingests at once (they take turns on the encoder batch by batch),
    # and may exceed by as many for projects that have nothing being ingested.
    ingest_concurrency: int = 2
    ingest_threads: int = 2  # the ingestion encoder's CPU threads; from_env: one per CPU
    ingest_onnx: bool = True  # ingestion on ONNX Runtime on a CPU (else PyTorch)
    ingest_int8: str = "all"  # int8 weights: all, on, off (docs/retrieval.md: the recall kept)
    ingest_turn_seconds: float = 0.5  # how long one batch holds the encoder
    # file_search in runs (server/tools/search_budget.py): defaults for what a run's tool
    # does not say, and the share of the model's context its results may fill.
    file_search_max_results: int | None = None  # None: the spec's 20 (5 for gpt-3.5)
    file_search_score_threshold: float = 0.0
    file_search_context_share: float = 0.25
    model_context_tokens: int = 8192  # a model's context when nothing says otherwise
    # Search queries of a sentence-transformers model on ONNX Runtime (retrieval/onnx_query.py).
    onnx_queries: bool = True
    ingest_wait_seconds: float = 120.0  # a run's file_search waits this long for ingestion
    request_threads: int = 2  # threads running the sync routes; from_env: one per CPU
    # Idle keep-alive connections stay open this long. uvicorn's default, 5 s, is exactly
    # how long httpx (so the openai SDK) keeps an idle pooled connection: a request sent
    # on it as the server closed it met a connection reset. Longer, so the client is the
    # one that lets it go; behind a proxy, set it above the proxy's idle timeout.
    keep_alive_seconds: float = 30.0
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    # The inspector's run records (model calls, status changes, tool executions): on or
    # off, the most bytes one record keeps (longer strings are cut, with a marker), and
    # how many days they are kept (0: until their thread is deleted).
    model_call_log: bool = True
    model_call_max_bytes: int = 256 * 1024
    model_call_retention_days: float = 30.0
    # Provider-prefixed model names (`anthropic/...`) clients may use without a
    # MODELS_CONFIG entry: fnmatch patterns. None by default, so a key holder cannot
    # reach a hosted provider the operator did not route.
    provider_models: tuple[str, ...] = ()
    # Operations: /metrics (on; loopback callers need no key), its key and own port.
    metrics_enabled: bool = True
    metrics_key: str | None = None
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    # A streamed run sends an SSE comment this often while it waits (proxies' idle cuts).
    sse_keepalive_seconds: float = 15.0
    docs_enabled: bool = True  # /docs: Swagger UI from bundled assets
    admin_key: str | None = None  # usage endpoints: /admin/usage

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("ASSISTD_DATA_DIR") or "./data").resolve()
        database_url = normalise_database_url(
            env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'assistd.db'}"
        )
        models_config = env.get("MODELS_CONFIG")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            api_keys=parse_api_keys(env.get("ASSISTD_API_KEYS")),
            max_file_bytes=int(env.get("ASSISTD_MAX_FILE_BYTES") or 512 * 1024 * 1024),
            max_json_bytes=int(env.get("ASSISTD_MAX_JSON_BYTES") or 4 * 1024 * 1024),
            allow_local_image_urls=_flag(env.get("ASSISTD_ALLOW_LOCAL_IMAGE_URLS")),
            model_base_url=env.get("MODEL_BASE_URL") or None,
            model_api_key=env.get("MODEL_API_KEY") or None,
            models_config=Path(models_config) if models_config else None,
            model_timeout=float(env.get("ASSISTD_MODEL_TIMEOUT") or 600),
            requires_action_timeout=int(env.get("ASSISTD_REQUIRES_ACTION_TIMEOUT") or 600),
            lease_seconds=float(env.get("ASSISTD_LEASE_SECONDS") or 30),
            worker_poll_seconds=float(env.get("ASSISTD_WORKER_POLL_SECONDS") or 0.5),
            poll_after_ms=int(env.get("ASSISTD_POLL_AFTER_MS") or 25),
            shutdown_grace_seconds=float(env.get("ASSISTD_SHUTDOWN_GRACE_SECONDS") or 10),
            sandbox_enabled=(env.get("ASSISTD_SANDBOX") or "auto").lower() != "off",
            chroma_url=env.get("CHROMA_URL") or None,
            embedding_model=env.get("ASSISTD_EMBEDDING_MODEL") or "all-MiniLM-L6-v2",
            embedding_models=split_list(env.get("ASSISTD_EMBEDDING_MODELS")),
            ingest_concurrency=max(1, int(env.get("ASSISTD_INGEST_CONCURRENCY") or 2)),
            ingest_threads=max(1, int(env.get("ASSISTD_INGEST_THREADS") or usable_cpus(1))),
            ingest_onnx=(env.get("ASSISTD_INGEST_ONNX") or "on").lower() not in _OFF,
            ingest_int8=int8_setting(env.get("ASSISTD_INGEST_INT8")),
            ingest_turn_seconds=float(env.get("ASSISTD_INGEST_TURN_SECONDS") or 0.5),
            file_search_max_results=int(env["ASSISTD_FILE_SEARCH_MAX_RESULTS"])
            if env.get("ASSISTD_FILE_SEARCH_MAX_RESULTS")
            else None,
            file_search_score_threshold=float(
                env.get("ASSISTD_FILE_SEARCH_SCORE_THRESHOLD") or 0.0
            ),
            file_search_context_share=float(env.get("ASSISTD_FILE_SEARCH_CONTEXT_SHARE") or 0.25),
            model_context_tokens=int(env.get("ASSISTD_MODEL_CONTEXT_TOKENS") or 8192),
            onnx_queries=(env.get("ASSISTD_ONNX_QUERIES") or "on").lower() not in _OFF,
            ingest_wait_seconds=float(env.get("ASSISTD_INGEST_WAIT_SECONDS") or 120),
            request_threads=max(1, int(env.get("ASSISTD_REQUEST_THREADS") or usable_cpus())),
            keep_alive_seconds=float(env.get("ASSISTD_KEEP_ALIVE_SECONDS") or 30),
            sandbox=sandbox_config(env),
            model_call_log=(env.get("ASSISTD_MODEL_CALL_LOG") or "on").lower() != "off",
            model_call_max_bytes=max(
                4096, int(env.get("ASSISTD_MODEL_CALL_MAX_BYTES") or 256 * 1024)
            ),
            model_call_retention_days=max(
                0.0, float(env.get("ASSISTD_MODEL_CALL_RETENTION_DAYS") or 30)
            ),
            provider_models=split_list(env.get("ASSISTD_PROVIDER_MODELS")),
            metrics_enabled=_on(env.get("ASSISTD_METRICS"), default=True),
            metrics_key=env.get("ASSISTD_METRICS_KEY") or None,
            metrics_port=int(env["ASSISTD_METRICS_PORT"])
            if env.get("ASSISTD_METRICS_PORT")
            else None,
            metrics_address=env.get("ASSISTD_METRICS_ADDRESS") or "127.0.0.1",
            sse_keepalive_seconds=float(env.get("ASSISTD_SSE_KEEPALIVE_SECONDS") or 15),
            docs_enabled=_on(env.get("ASSISTD_DOCS"), default=True),
            admin_key=env.get("ASSISTD_ADMIN_KEY") or None,
        )


def split_list(raw: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def _on(raw: str | None, default: bool) -> bool:
    if not raw:
        return default
    return raw.strip().lower() not in _OFF


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def int8_setting(raw: str | None) -> str:
    """ASSISTD_INGEST_INT8: all (the default), on, or off (0/false/no too)."""
    value = (raw or "all").strip().lower()
    if value in _OFF:
        return "off"
    if value not in ("on", "all"):
        raise ValueError(f"ASSISTD_INGEST_INT8 must be on, all or off, not {raw!r}")
    return value


def usable_cpus(at_least: int = 2) -> int:
    """CPUs this process may run on (at least `at_least`): the default number of request
    threads (at least 2) and of the ingestion encoder's threads.

    Route handlers hold the GIL for most of their work, so threads beyond the CPUs add
    no parallelism, only contention: on 2 CPUs under 16 concurrent clients, a message
    list cost 1.6 ms of CPU with 2 threads and 2.5-2.9 ms with anyio's default 40, the
    difference mostly in the kernel, waking threads that then wait for the GIL
    (bench/api_crud.py). A database across a network holds threads in I/O instead:
    raise ASSISTD_REQUEST_THREADS there."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 2
    quota = cgroup_cpu_quota()
    if quota is not None:
        count = min(count, quota)
    return max(at_least, count)


def cgroup_cpu_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """The CPUs a cgroup v2 quota allows (`docker run --cpus 2` on a 64-core host: 2),
    rounded up; None without a quota or outside a cgroup v2 container."""
    try:
        quota, period = path.read_text().split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no such file, or "max 100000": no quota
        return None


def normalise_database_url(url: str) -> str:
    """`postgres://` and `postgresql://` (psycopg2's default in SQLAlchemy) mean psycopg 3,
    the driver the `postgres` extra installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def sandbox_config(env: dict[str, str]) -> SandboxConfig:
    """ASSISTD_SANDBOX_* variables over SandboxConfig's defaults."""
    base = SandboxConfig()

    def get(name: str) -> str | None:
        return env.get(f"ASSISTD_SANDBOX_{name}") or None

    def number(name: str, default: int) -> int:  # where 0 is meaningful
        value = get(name)
        return default if value is None else int(value)

    return SandboxConfig(
        image=get("IMAGE") or base.image,
        runtime=get("RUNTIME") or base.runtime,
        memory=get("MEMORY") or base.memory,
        cpus=float(get("CPUS") or base.cpus),
        pids_limit=int(get("PIDS") or base.pids_limit),
        work_size=get("DISK") or base.work_size,
        tmp_size=get("TMP") or base.tmp_size,
        exec_timeout=float(get("TIMEOUT") or base.exec_timeout),
        idle_ttl=float(get("TTL") or base.idle_ttl),
        pool_size=number("POOL", base.pool_size),
        shm_size=get("SHM") or base.shm_size,
        max_sessions=max(1, int(get("MAX_SESSIONS") or base.max_sessions)),
        max_input_bytes=int(get("MAX_INPUT_BYTES") or base.max_input_bytes),
        max_file_bytes=int(get("MAX_FILE_BYTES") or base.max_file_bytes),
        max_files=number("MAX_FILES", base.max_files),
        max_images=number("MAX_IMAGES", base.max_images),
        max_image_bytes=int(get("MAX_IMAGE_BYTES") or base.max_image_bytes),
        max_output_bytes=int(get("MAX_OUTPUT_BYTES") or base.max_output_bytes),
    )
