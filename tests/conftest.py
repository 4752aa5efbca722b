"""Shared fixtures: a real server subprocess and official-SDK clients pointed at it.

Every response the SDK clients receive is checked against the OpenAPI spec subset
(tests/support/openapi_contract.py), so each test is also a contract test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.support.openapi_contract import contract_hook
from tests.support.scripted_model import ScriptedModel, start_scripted_model
from tests.support.server_process import ServerProcess, drop_test_databases

KEY_ALPHA = "sk-alpha-0123456789"
KEY_BETA = "sk-beta-9876543210"
API_KEYS = f"{KEY_ALPHA}:alpha,{KEY_BETA}:beta"


def make_client(base_url: str, api_key: str) -> OpenAI:
    http = httpx.Client(event_hooks={"response": [contract_hook]}, timeout=30)
    return OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, http_client=http)


# Test files whose outcome does not depend on which database the server uses: pure logic,
# the sandbox, packaging, the browser page, the CLI, model routing, Chroma. The PostgreSQL
# pass (ASSISTD_TEST_DATABASE_URL set) skips them, since the SQLite pass already ran them,
# which keeps the whole suite within CI's time; every API and run-engine test runs twice.
SQLITE_PASS_ONLY = {
    "tests/unit",
    "tests/test_bundle_wheels.py",
    "tests/test_chroma_server.py",
    "tests/test_cli.py",
    "tests/test_code_interpreter.py",
    "tests/test_compose.py",
    "tests/test_ingest_cli.py",
    "tests/test_inspector_page.py",
    "tests/test_model_routing.py",
    "tests/test_offline_bundle.py",
    "tests/test_openapi_contract.py",
    "tests/test_retrieval_pipeline.py",
    "tests/test_sandbox_channel.py",
    "tests/test_sandbox_limits.py",
    "tests/test_sandbox_packages.py",
    "tests/test_scripted_model.py",
    "tests/test_upload_temp_files.py",
}
ROOT = Path(__file__).resolve().parents[1]


def _sqlite_pass_only(item: pytest.Item) -> bool:
    path = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
    return path in SQLITE_PASS_ONLY or path.rsplit("/", 1)[0] in SQLITE_PASS_ONLY


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `manual` (a full offline bundle from nothing: many minutes) run only
    with ASSISTD_TEST_MANUAL=1, as scripts/test-offline sets; otherwise deselected. On the
    PostgreSQL pass, SQLITE_PASS_ONLY is deselected."""
    drop = (
        []
        if os.environ.get("ASSISTD_TEST_MANUAL")
        else [item for item in items if item.get_closest_marker("manual")]
    )
    if os.environ.get("ASSISTD_TEST_DATABASE_URL"):
        drop += [item for item in items if _sqlite_pass_only(item) and item not in drop]
    if drop:
        config.hook.pytest_deselected(items=drop)
        gone = set(map(id, drop))
        items[:] = [item for item in items if id(item) not in gone]


@pytest.fixture(scope="session", autouse=True)
def _test_databases() -> Iterator[None]:
    """On the PostgreSQL pass, drop the databases the servers used when the run ends."""
    yield
    drop_test_databases()


@pytest.fixture(scope="session")
def scripted() -> Iterator[tuple[ScriptedModel, str]]:
    """The model: a scripted chat-completions server on loopback that litellm calls."""
    model, base_url, stop = start_scripted_model()
    yield model, base_url
    stop()


@pytest.fixture
def model(scripted: tuple[ScriptedModel, str]) -> ScriptedModel:
    """The scripted model with an empty script and request log for this test."""
    scripted[0].reset()
    return scripted[0]


def server_env(model_url: str, **extra: str) -> dict[str, str]:
    return {
        "ASSISTD_API_KEYS": API_KEYS,
        "ASSISTD_MAX_FILE_BYTES": str(1024 * 1024),
        "MODEL_BASE_URL": model_url,
        "ASSISTD_WORKER_POLL_SECONDS": "0.1",
        "ASSISTD_SANDBOX": "off",  # tests/test_code_interpreter.py starts its own servers
        **extra,
    }


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("server"), env=server_env(scripted[1])).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> OpenAI:
    return make_client(server.base_url, KEY_ALPHA)


@pytest.fixture(scope="session")
def other_client(server: ServerProcess) -> OpenAI:
    """A client of a second project: none of `client`'s objects may be visible to it."""
    return make_client(server.base_url, KEY_BETA)


@pytest.fixture(scope="session")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    """Raw HTTP for what the SDK would refuse to send (malformed bodies, bad types)."""
    with httpx.Client(
        base_url=f"{server.base_url}/v1",
        headers={"Authorization": f"Bearer {KEY_ALPHA}", "OpenAI-Beta": "assistants=v2"},
        event_hooks={"response": [contract_hook]},
        timeout=30,
    ) as c:
        yield c


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("The launch code is 0000. Keep it safe.\n")
    return path


TABLES = (
    "assistants",
    "threads",
    "messages",
    "files",
    "runs",
    "run_steps",
    "vector_stores",
    "vector_store_files",
    "vector_store_file_batches",
)


@pytest.fixture
def row_counts(server: ServerProcess):
    """Row counts straight from the server's database: proof that a rejected request
    changed nothing (there is no API to list threads, for one)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(server.database_url)

    def counts() -> dict[str, int]:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}

    yield counts
    engine.dispose()


def walk(page):  # type: ignore[no-untyped-def]
    """Every item across pages: `auto_paging_iter()` where the SDK has it (1.x, 2.x);
    3.x dropped it and iterating the page itself walks the pages."""
    return list(page.auto_paging_iter() if hasattr(page, "auto_paging_iter") else page)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def assistant(client: OpenAI):  # type: ignore[no-untyped-def]
    return client.beta.assistants.create(
        model="gpt-4o", name="Helper", instructions="Be brief.", tools=[WEATHER_TOOL]
    )


@pytest.fixture
def thread(client: OpenAI):  # type: ignore[no-untyped-def]
    return client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
