"""Screenshots of the inspector's main views for docs/inspector.md.

Starts the scripted model and a server (with the code-interpreter sandbox when Docker
and its image are there), builds the scenario of tests/support/inspector_scenario.py
and photographs each view in headless Chromium. Run it as `scripts/inspector-screenshots`
(writes docs/inspector/*.png).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.inspector_scenario import build
from tests.support.scripted_model import start_scripted_model
from tests.support.server_process import REPO, ServerProcess

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


def sandbox_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=30).images.get("assistd-sandbox:1")
        return True
    except Exception as exc:  # noqa: BLE001 - any failure: no code_interpreter screenshots
        print(f"no code_interpreter screenshot (no sandbox: {exc.__class__.__name__}: {exc})")
        return False


def shoot(page: Page, out: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "inspector")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    code = sandbox_available()
    model, model_url, stop_model = start_scripted_model()
    with tempfile.TemporaryDirectory(prefix="assistd-shots-") as tmp:
        env = server_env(model_url, ASSISTD_SANDBOX="auto" if code else "off")
        env["ASSISTD_SANDBOX_TIMEOUT"] = "30"
        server = ServerProcess(Path(tmp) / "server", env=env).start(timeout=300)
        try:
            origin = server.base_url
            scenario = build(make_client(origin, KEY_ALPHA), model, Path(tmp), code=code)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                page.goto(f"{origin}/inspector/")
                shoot(page, out, "login")
                page.get_by_label("API key").fill(KEY_ALPHA)
                page.get_by_role("button", name="Log in").click()
                expect(page.get_by_role("link", name=scenario.thread_id)).to_be_visible()
                shoot(page, out, "threads")
                thread = f"{origin}/inspector/#/threads/{scenario.thread_id}"
                page.goto(thread)
                expect(page.get_by_role("heading", name="Messages")).to_be_visible()
                shoot(page, out, "thread")
                page.goto(f"{thread}/runs/{scenario.search_run_id}")
                expect(page.locator("details.model-call").first).to_be_visible()
                shoot(page, out, "run-file-search")
                if scenario.code_run_id:
                    page.goto(f"{thread}/runs/{scenario.code_run_id}")
                    expect(page.locator("img.output-image").first).to_be_visible()
                    shoot(page, out, "run-code-interpreter")
                page.goto(thread)
                page.get_by_role("link", name="【0:0†warranty.md】").click()
                expect(page.locator(".chunk.target")).to_be_visible()
                shoot(page, out, "chunk")
                page.goto(f"{origin}/inspector/#/stores/{scenario.store_id}")
                page.get_by_label("Query").fill("how long is the warranty")
                page.get_by_role("button", name="Search").click()
                expect(page.locator(".scores").first).to_be_visible()
                shoot(page, out, "store-search")
                browser.close()
        finally:
            server.stop()
            stop_model()


if __name__ == "__main__":
    main()
