"""The inspector: a read-only web page at /inspector/ showing what every run did, from
the request sent to the model to the chunks retrieval found (docs/inspector.md).

`recorder.py` records each run's model calls, status changes and tool executions
through the run-observer seam; `page.py` serves the page's static files; the JSON it
reads is the API plus the extensions in server/routers/inspect.py.
"""
