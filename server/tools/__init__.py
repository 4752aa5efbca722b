"""Server-side tools: the tools a run executes itself instead of handing the call to the
client. `base.py` is the seam (ServerTool, ToolUse), `registry.py` lists the tools;
file_search's ingestion jobs (`ingestion.py`) and search service (`search_service.py`)
live here too."""
