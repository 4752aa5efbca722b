"""The inspector page end to end in headless Chromium (Debian's, driven by Playwright):
log in, open a thread a real run made, its run, the model request, the file_search trace
and the chunk it leads to, a code_interpreter image; attacker-shaped text shows as text;
a second project's key sees none of it; the page loads nothing from outside the server.
One browser and one sandbox-enabled server for the module."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import KEY_ALPHA, KEY_BETA, make_client, server_env
from tests.support.docker_check import sandboxed_server
from tests.support.inspector_scenario import QUESTION, XSS_FILENAME, XSS_MESSAGE, build, tool_call
from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]


@pytest.fixture(scope="module")
def page_server(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> Iterator[ServerProcess]:
    with sandboxed_server(tmp_path_factory.mktemp("inspector-server"), scripted[1]) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():  # .ci/run installs it; a missing one fails CI
        message = f"the inspector's browser tests need {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def log_in(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Threads")).to_be_visible()


def no_script_ran(page: Page) -> None:
    """Markup from user text never became elements, and none of its scripts ran."""
    assert page.locator("main script, main img[onerror], main [onerror]").count() == 0
    assert page.evaluate("window.__xss") is None


def test_the_page_and_its_assets_come_from_the_package_with_a_strict_policy(
    page_server: ServerProcess,
) -> None:
    base = page_server.base_url
    moved = httpx.get(f"{base}/inspector", timeout=30)
    assert moved.status_code == 308 and moved.headers["location"] == "/inspector/"
    index = httpx.get(f"{base}/inspector/", timeout=30)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    csp = index.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and "unsafe" not in csp
    script = httpx.get(f"{base}/inspector/js/app.js", timeout=30)
    assert script.headers["content-type"].startswith("text/javascript")
    missing = httpx.get(f"{base}/inspector/js/../../app.py", timeout=30)
    assert missing.status_code == 404 and "error" in missing.json()


def test_a_walk_through_a_thread_its_runs_traces_chunks_and_images(
    page_server: ServerProcess, browser: Browser, model: ScriptedModel, tmp_path: Path
) -> None:
    origin = page_server.base_url
    client = make_client(origin, KEY_ALPHA)
    scenario = build(client, model, tmp_path, code=True)
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{origin}/inspector/")
    log_in(page, KEY_ALPHA)

    # The thread, found by its metadata; the attacker's markup is shown as text.
    page.get_by_label("Search threads by id or metadata").fill("acme")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=scenario.thread_id).click()
    expect(page.get_by_role("heading", name=f"Thread {scenario.thread_id}")).to_be_visible()
    expect(page.locator(".message.user").first).to_contain_text(XSS_MESSAGE + QUESTION)
    no_script_ran(page)

    # The file_search run: the request the model got, then the trace and its chunk.
    page.get_by_role("link", name=scenario.search_run_id).first.click()
    expect(page.get_by_role("heading", name=f"Run {scenario.search_run_id}")).to_be_visible()
    first_call = page.locator("details.model-call").first
    expect(first_call).to_contain_text("MODEL_BASE_URL")
    expect(first_call.locator(".prompt-message.user")).to_contain_text(QUESTION)
    expect(first_call).to_contain_text("file_search")
    trace = page.get_by_role("table", name=re.compile("Every candidate"))
    cited = trace.locator("tbody tr").filter(has=page.get_by_text("cited", exact=True))
    expect(cited).to_contain_text("warranty.md")
    cited.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("Chunks of"))).to_be_visible()
    expect(page.locator(".chunk.target")).to_contain_text("three years from the date")
    # ... in its file, between its neighbours.
    expect(page.locator(".chunk")).to_have_count(3)
    expect(page.locator(".chunk").first).to_contain_text("Descale")
    expect(page.locator(".chunk").last).to_contain_text("service centre in Lyon")

    # The citation in the answer leads to the same chunk.
    page.goto(f"{origin}/inspector/#/threads/{scenario.thread_id}")
    page.get_by_role("link", name="【0:0†warranty.md】").click()
    expect(page.locator(".chunk.target")).to_contain_text("three years from the date")

    # The code_interpreter run: the code, its figure, the session it ran in.
    page.goto(f"{origin}/inspector/#/threads/{scenario.thread_id}/runs/{scenario.code_run_id}")
    call = page.locator(".call").filter(has_text="code_interpreter")
    expect(call).to_contain_text("plt.plot(primes, marker='o')")
    expect(call).to_contain_text("new (no earlier variables)")
    figure = call.locator("img.output-image")
    expect(figure).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=figure.element_handle()
    )

    # The vector store: files (one named with markup) and the search with split scores.
    page.get_by_role("link", name="Vector stores").click()
    page.get_by_role("link", name=scenario.store_id).click()
    expect(page.get_by_role("cell", name=XSS_FILENAME)).to_be_visible()
    page.get_by_label("Query").fill("how long is the warranty")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".scores").first).to_contain_text("0.8 × vector")
    expect(page.locator(".results")).to_contain_text("<script>window.__xss = 4</script>")
    no_script_ran(page)

    # Another project's key sees none of it, even by direct address.
    page.get_by_role("button", name="Log out").click()
    log_in(page, KEY_BETA)
    expect(page.get_by_role("cell", name="No threads.")).to_be_visible()
    for view in (
        f"#/threads/{scenario.thread_id}",
        f"#/threads/{scenario.thread_id}/runs/{scenario.search_run_id}",
        f"#/stores/{scenario.store_id}",
    ):
        page.goto(f"{origin}/inspector/{view}")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.get_by_role("link", name="Vector stores").click()
    expect(page.get_by_text("No vector stores.")).to_be_visible()
    no_script_ran(page)

    # Everything the page loaded came from this server (images via blob: URLs it made).
    assert requested
    foreign = [u for u in requested if not u.startswith((f"{origin}/", f"blob:{origin}/"))]
    assert foreign == []
    page.close()


def test_code_interpreter_session_states_new_reused_reset(
    page_server: ServerProcess, model: ScriptedModel
) -> None:
    client = make_client(page_server.base_url, KEY_ALPHA)
    coder = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create()
    for code in ("x = 41", "print(x + 1)", "import os\nos._exit(1)"):
        model.tool_calls([tool_call("code_interpreter", code=code)]).text("Done.")
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=coder.id, poll_interval_ms=50
        )
        assert run.status == "completed", run.last_error
    deadline = time.monotonic() + 10  # records are written beside the runs
    while True:
        r = httpx.get(
            f"{page_server.base_url}/v1/threads/{thread.id}/traces",
            headers={"Authorization": f"Bearer {KEY_ALPHA}"},
            timeout=30,
        )
        executions: list[dict[str, Any]] = r.json()["code_interpreter"]
        if len(executions) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [e["session"] for e in executions] == ["new", "reused", "reset"]
    assert "restarted" in executions[2]["error"] and executions[0]["error"] is None
    assert all(e["seconds"] > 0 for e in executions)


def test_with_no_keys_configured_the_page_shows_the_local_default_project(
    tmp_path: Path, browser: Browser, scripted: tuple[ScriptedModel, str]
) -> None:
    env = {k: v for k, v in server_env(scripted[1]).items() if k != "ASSISTD_API_KEYS"}
    server = ServerProcess(tmp_path / "open", env=env).start()
    try:
        thread = make_client(server.base_url, "anything").beta.threads.create(
            metadata={"note": json.dumps({"local": True})}
        )
        page = browser.new_page()
        page.goto(f"{server.base_url}/inspector/")
        expect(page.get_by_text("No API keys configured")).to_be_visible()
        expect(page.get_by_role("link", name=thread.id)).to_be_visible()
        assert page.get_by_label("API key").count() == 0
        page.close()
    finally:
        server.stop()
