"""Which of an execution's outputs may leave the sandbox, and a note for each that may not.

Caps come from SandboxConfig (each has an ASSISTD_SANDBOX_* variable). A skipped output
is never silent: the note names it, its size and the cap, and goes into the step's
`logs` output, which is also what the model reads.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from sandbox.config import ExecResult, Input, Output, SandboxConfig, fmt_bytes


@dataclass
class Plan:
    figures: list[Output] = field(default_factory=list)
    files: list[Output] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    budget: int = 0  # bytes left for this execution once the planned outputs are in


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def plan_outputs(result: ExecResult, cfg: SandboxConfig, skip: Container[str] = ()) -> Plan:
    """Apply the per-image, per-file and per-execution caps to what the kernel reported
    (sizes as it saw them; fetching checks the real bytes again)."""
    plan = Plan(budget=cfg.max_output_bytes)
    per_run = f"the {fmt_bytes(cfg.max_output_bytes)} limit per execution"
    over: list[Output] = []
    for figure in result.figures:
        if len(plan.figures) >= cfg.max_images:
            over.append(figure)
        elif figure.size > cfg.max_image_bytes:
            plan.notes.append(
                f"An image ({fmt_bytes(figure.size)}) was not shown: it is larger than the "
                f"{fmt_bytes(cfg.max_image_bytes)} limit per image "
                "(ASSISTD_SANDBOX_MAX_IMAGE_BYTES)."
            )
        elif figure.size > plan.budget:
            plan.notes.append(f"An image was not shown: it would pass {per_run}.")
        else:
            plan.figures.append(figure)
            plan.budget -= figure.size
    if over:
        plan.notes.append(
            f"{plural(len(over), 'image')} not shown: an execution shows at most "
            f"{plural(cfg.max_images, 'image')} (ASSISTD_SANDBOX_MAX_IMAGES)."
        )
    over = []
    for item in result.files:
        if item.path in skip:
            continue
        if len(plan.files) >= cfg.max_files:
            over.append(item)
        elif item.size > cfg.max_file_bytes:
            plan.notes.append(
                f"{item.path} ({fmt_bytes(item.size)}) was not returned: it is larger than the "
                f"{fmt_bytes(cfg.max_file_bytes)} limit per file (ASSISTD_SANDBOX_MAX_FILE_BYTES)."
            )
        elif item.size > plan.budget:
            plan.notes.append(f"{item.path} was not returned: it would pass {per_run}.")
        else:
            plan.files.append(item)
            plan.budget -= item.size
    if over or result.files_unlisted:
        names = ", ".join(o.path for o in over[:10]) + (", ..." if len(over) > 10 else "")
        count = len(over) + result.files_unlisted
        plan.notes.append(
            f"{plural(count, 'file')} not returned ({names or 'not listed'}): an execution "
            f"returns at most {plural(cfg.max_files, 'file')} (ASSISTD_SANDBOX_MAX_FILES)."
        )
    return plan


def fetch_failed(path: str, why: str) -> str:
    return f"{path} was not returned: {why}."


def input_refused(item: Input, cfg: SandboxConfig) -> str | None:
    """Why an input may not be copied in, or None."""
    if item.size <= cfg.max_input_bytes:
        return None
    return (
        f"/mnt/data/{item.name} ({fmt_bytes(item.size)}) was not copied into the sandbox: it "
        f"is larger than the {fmt_bytes(cfg.max_input_bytes)} limit per input file "
        "(ASSISTD_SANDBOX_MAX_INPUT_BYTES)."
    )
