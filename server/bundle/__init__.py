"""`assistd bundle create`: everything an air-gapped site needs, in one directory.

Made on a connected machine, carried over on a stick, installed by its `install.sh` with
no network at all: wheels for assistd and every dependency (CPU torch by default), the
sandbox image as a `docker save` archive, optionally the assistd server image, and a
SHA-256 manifest that install.sh checks before it touches anything. See
docs/air-gapped.md.
"""
