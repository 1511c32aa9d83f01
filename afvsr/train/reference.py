"""The config reference, generated from the schemas (``afvsr train --print-config``): one
Markdown table per section and task, with each key's default, type and constraints, and help."""

from __future__ import annotations

import json

from afvsr.schema import REQUIRED, Field
from afvsr.train.config import LOG_DEFAULTS, RUN_DEFAULTS, TRAIN_DEFAULTS
from afvsr.train.tasks import TASKS


def _default(field: Field) -> str:
    if field.default is REQUIRED:
        return "required"
    return json.dumps(field.default)


def section_table(title: str, fields: dict[str, Field]) -> str:
    """``### title`` and a Markdown table of ``fields``."""
    lines = [f"### {title}", "", "| key | default | type | meaning |", "|---|---|---|---|"]
    for key, field in fields.items():
        help_text = field.help.replace("|", "\\|")
        kind = field.describe().replace("|", "\\|")
        lines.append(f"| `{key}` | `{_default(field)}` | {kind} | {help_text} |")
    return "\n".join(lines) + "\n"


def config_reference() -> str:
    """Every section's keys: the loop's (``[run]``, ``[train]``, ``[log]``) and each task's."""
    parts = [
        section_table("[run]", RUN_DEFAULTS),
        "### [model]\n\n`name` (a key of `afvsr.models.MODELS`) and the keyword arguments of "
        "that model's constructor, with its defaults. The names from before the method was "
        'named AFVSR, `name = "fusion"` and its key `fusion`, read as `"afvsr"` and '
        "`group_fusion` (`afvsr/names.py`).\n",
        section_table("[train] (every task)", TRAIN_DEFAULTS),
        section_table("[log]", LOG_DEFAULTS),
    ]
    for name, task in TASKS.items():
        parts.append(section_table(f'[train] (task "{name}")', task.train_fields))
        parts.append(section_table(f'[data] (task "{name}")', task.data_fields))
        parts.append(section_table(f'[val] (task "{name}")', task.val_fields))
    return "\n".join(parts)
