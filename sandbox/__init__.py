"""Code interpreter sandbox (Docker sessions). Filled in by the code-interpreter work."""
