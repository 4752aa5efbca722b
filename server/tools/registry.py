"""Every server-side tool the runs of this process can use.

Adding a tool: a module with a `ServerTool` and its `ToolUse` (see base.py), built in
`server_tools` below; the run engine needs no change.
"""

from __future__ import annotations

from sandbox.sessions import SandboxManager
from server.config import Settings
from server.storage import BlobStore
from server.tools.base import ServerTool
from server.tools.code_interpreter import CodeInterpreter
from server.tools.file_search import FileSearch
from server.tools.search_service import SearchService


def server_tools(
    settings: Settings,
    *,
    sandbox: SandboxManager | None,
    sandbox_problem: str | None,
    sandbox_packages: list[str] | None,
    blobs: BlobStore,
    search: SearchService,
) -> dict[str, ServerTool]:
    """Every server-side tool, by name, in the order the model is offered them."""
    tools: list[ServerTool] = [
        CodeInterpreter(sandbox, blobs, sandbox_problem, sandbox_packages),
        FileSearch(search, settings),
    ]
    return {tool.name: tool for tool in tools}
