"""A thread worth inspecting, made through the SDK with the scripted model: a file_search
run that cites a chunk, and (with a sandbox) a code_interpreter run that draws a figure
and writes a file. Attacker-shaped text rides along in a message, a file name and a
chunk. Shared by tests/test_inspector_page.py and scripts/inspector-screenshots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai import OpenAI

from tests.support.scripted_model import ScriptedModel

WARRANTY = (
    "# Care\n\nDescale the Zephyr kettle once a month with white vinegar, then boil clean "
    "water twice and pour it away. Never immerse the base in water; wipe it with a damp "
    "cloth. Keep the lid closed while boiling so the steam switch turns the kettle off.\n\n"
    "# Warranty\n\nEvery Zephyr kettle carries a warranty of three years from the date of "
    "purchase. The warranty covers the heating element and the thermostat, but not the "
    "glass jug, which is a wear part.\n\n"
    "# Claims\n\nTo claim, send the kettle with its receipt to the service centre in Lyon. "
    "Repairs take about ten working days, and we pay for the return parcel. A kettle that "
    "cannot be repaired is replaced by the current model.\n"
)
SHIPPING = (
    "# Shipping\n\nOrders leave our warehouse within two business days. Standard delivery "
    "inside the EU takes three to five days; express delivery arrives the next day for an "
    "extra fee of 12 euros.\n"
)
# Markup in user-controlled places: it must show as text, never run.
XSS_MESSAGE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> '
XSS_FILENAME = "<img src=x onerror=window.__xss=3>.md"
XSS_CHUNK = "# Returns\n\n<script>window.__xss = 4</script> Returns are accepted for 30 days.\n"
QUESTION = "How long is the kettle's warranty?"
ANSWER = "The kettle has a three-year warranty 【0:0†warranty.md】."
PLOT = (
    "import matplotlib.pyplot as plt\n"
    "primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\n"
    "plt.plot(primes, marker='o')\n"
    "plt.title('The first ten primes')\n"
    "with open('/mnt/data/primes.csv', 'w') as fh:\n"
    "    fh.write('prime\\n' + '\\n'.join(map(str, primes)) + '\\n')\n"
    "print(len(primes), 'primes')"
)
PLOT_ANSWER = "Here is the plot; the numbers are in [primes.csv](sandbox:/mnt/data/primes.csv)."


@dataclass
class Scenario:
    store_id: str
    warranty_id: str
    evil_id: str
    assistant_id: str
    thread_id: str
    search_run_id: str
    code_run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def upload(client: OpenAI, folder: Path, name: str, content: str) -> Any:
    path = folder / name
    path.write_text(content)
    with path.open("rb") as fh:
        return client.files.create(file=fh, purpose="assistants")


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": json.dumps(arguments)}


def build(client: OpenAI, model: ScriptedModel, folder: Path, *, code: bool) -> Scenario:
    """The thread, its two runs and the store they search; `code` adds the
    code_interpreter run (it needs the sandbox)."""
    files = [
        upload(client, folder, "warranty.md", WARRANTY),
        upload(client, folder, "shipping.md", SHIPPING),
        upload(client, folder, XSS_FILENAME, XSS_CHUNK),
    ]
    store = client.vector_stores.create(
        name="Kettle manuals",
        file_ids=[f.id for f in files],
        # A chunk per section (our markdown strategy), so a cited chunk has neighbours.
        extra_body={
            "chunking_strategy": {
                "type": "markdown",
                "markdown": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
            }
        },
    )
    for f in files:
        done = client.vector_stores.files.poll(f.id, vector_store_id=store.id, poll_interval_ms=100)
        assert done.status == "completed", done.last_error
    tools: list[Any] = [{"type": "file_search"}]
    if code:
        tools.append({"type": "code_interpreter"})
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        name="Support",
        instructions="Answer from the manuals; use Python for numbers.",
        tools=tools,
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": XSS_MESSAGE + QUESTION}],
        metadata={"customer": "acme", "channel": "web"},
    )
    model.tool_calls([tool_call("file_search", queries=["kettle warranty", "guarantee"])])
    model.text(ANSWER)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "completed", run.last_error
    scenario = Scenario(store.id, files[0].id, files[2].id, assistant.id, thread.id, run.id)
    if code:
        client.beta.threads.messages.create(
            thread_id=thread.id, role="user", content="Plot the first ten primes."
        )
        model.tool_calls([tool_call("code_interpreter", code=PLOT)]).text(PLOT_ANSWER)
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
        )
        assert run.status == "completed", run.last_error
        scenario.code_run_id = run.id
    return scenario
