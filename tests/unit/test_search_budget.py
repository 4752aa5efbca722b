"""Where file_search's share of the prompt comes from: MODELS_CONFIG's model_info, then
litellm's model map (for the name or the name it routes to), then the server default."""

from __future__ import annotations

from pathlib import Path

from server.config import Settings
from server.tools.file_search import settings_for
from server.tools.search_budget import ContextWindows


def test_context_windows_come_from_config_then_litellm_then_the_default(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: small\n"
        "    litellm_params: {model: ollama_chat/qwen2.5:0.5b}\n"
        "    model_info: {max_input_tokens: 4096}\n"
        "  - model_name: smart\n"
        "    litellm_params: {model: gpt-4o}\n"
    )
    env = {"MODELS_CONFIG": str(config), "ASSISTD_MODEL_CONTEXT_TOKENS": "3000"}
    windows = ContextWindows(Settings.from_env(env))
    assert windows.lookup("small") == 4096
    assert windows.lookup("smart") == 128000  # what gpt-4o takes, from litellm's map
    assert windows.lookup("gpt-4o-mini") == 128000
    assert windows.lookup("my-local-model") == 3000


def test_server_defaults_apply_where_the_tool_does_not_say() -> None:
    class Run:
        model = "m"
        tools = [{"type": "file_search"}]

    settings = Settings.from_env(
        {"ASSISTD_FILE_SEARCH_MAX_RESULTS": "6", "ASSISTD_FILE_SEARCH_SCORE_THRESHOLD": "0.3"}
    )
    got = settings_for(
        Run(),  # type: ignore[arg-type]
        settings.file_search_max_results,
        settings.file_search_score_threshold,
    )
    assert (got.max_num_results, got.score_threshold) == (6, 0.3)
    Run.tools = [
        {
            "type": "file_search",
            "file_search": {"max_num_results": 3, "ranking_options": {"score_threshold": 0.0}},
        }
    ]
    got = settings_for(Run(), 6, 0.3)  # type: ignore[arg-type]
    assert (got.max_num_results, got.score_threshold) == (3, 0.0)
