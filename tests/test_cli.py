"""The assistd command, run as a process: its help, and how it refuses a bad MODELS_CONFIG
(one line, status 2) before serving."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.server_process import REPO, SERVER_PYTHON


def test_serve_refuses_a_bad_config_with_one_line_and_status_2(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"model_list": [{"model_name": "local", "litellm_param": {}}]}))
    env = {"MODELS_CONFIG": str(path), "ASSISTD_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for command in (["serve", "--port", "1"], ["worker"]):
        done = subprocess.run(
            [SERVER_PYTHON, "-m", "server", *command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines == [
            f"assistd: MODELS_CONFIG {path}: model_list[0] (model_name 'local'): unknown field "
            "'litellm_param'; did you mean 'litellm_params'?"
        ]
    missing = subprocess.run(
        [SERVER_PYTHON, "-m", "server", "serve"],
        cwd=REPO,
        env={**env, "MODELS_CONFIG": str(tmp_path / "gone.yaml")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert missing.returncode == 2
    assert (
        missing.stderr.strip() == f"assistd: MODELS_CONFIG {tmp_path / 'gone.yaml'}: no such file"
    )


def test_the_cli_prints_help_with_defaults_on_every_subcommand(capsys) -> None:
    from server.cli import build_parser

    parser = build_parser()
    subcommands = [
        ["serve"],
        ["worker"],
        ["migrate"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["sandbox", "build"],
        ["sandbox", "status"],
        ["models", "check"],
        ["usage"],
        ["doctor"],
        ["ingest"],
        ["bundle", "create"],
    ]
    for words in subcommands:
        with pytest.raises(SystemExit):
            parser.parse_args([*words, "--help"])
        shown = capsys.readouterr().out
        assert f"usage: assistd {' '.join(words)}" in shown and "(default: info)" in shown
    done = subprocess.run(
        [SERVER_PYTHON, "-m", "server", "serve", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "(default: 127.0.0.1)" in done.stdout and "(default: 8000)" in done.stdout
    assert "(default: info)" in done.stdout
    alone = subprocess.run(
        [SERVER_PYTHON, "-m", "server"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert alone.returncode == 0 and alone.stdout.startswith("usage: assistd") and not alone.stderr
    version = subprocess.run(
        [SERVER_PYTHON, "-m", "server", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert version.stdout.strip() == "assistd 0.1.0"
