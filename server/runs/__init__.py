"""The run engine: the runner that advances a run (`runner.py`) one model call at a time
(`turn.py`), the worker loop that claims runs as durable jobs (`worker.py`, `leases.py`),
the prompt (`prompt.py`), the model adapter (`model_client.py`) and run events
(`events.py`). The state table is `server/run_states.py`; server-side tools are in
`server/tools/`."""
