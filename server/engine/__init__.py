"""The run engine: the run state machine, the model adapter, the runner that advances a
run step by step, the worker loop that claims runs as durable jobs, and run events."""
