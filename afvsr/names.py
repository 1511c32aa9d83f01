"""The method's one name, AFVSR (``afvsr``), and the old names that still read as it.

The method (attention-based fusion of frame-rate groups, :class:`afvsr.models.AFVSR`) was
called "fusion" before: its model key (model-file metadata, ``[model] name``, results files),
its shipped weights (``fusion-*-small``) and, for its ablation switch, the constructor argument
``fusion`` (now ``group_fusion``). This module is the one place those old names live; every
reader of a name passes it through here, so old model files, configs, results files and
shipped names keep working. No torch import: ``afvsr table`` uses it.
"""

from __future__ import annotations

from typing import Any

METHOD_KEY = "afvsr"  # the method's key in afvsr.models.MODELS

# Old name -> current name: model keys and shipped weights names.
OLD_NAMES: dict[str, str] = {
    "fusion": METHOD_KEY,
    "fusion-multihead-small": "afvsr-multihead-small",
    "fusion-single-small": "afvsr-single-small",
    "fusion-rates135-small": "afvsr-rates135-small",
}

# Per model key: old constructor argument -> current one (model files, configs, results files).
OLD_KWARGS: dict[str, dict[str, str]] = {
    METHOD_KEY: {"fusion": "group_fusion"},
}


def current_name(name: str) -> str:
    """The current spelling of a model key or shipped name (``"fusion"`` → ``"afvsr"``)."""
    return OLD_NAMES.get(name, name) if isinstance(name, str) else name


def kwarg_renames(family: str, kwargs: Any) -> dict[str, str]:
    """``{old: current}`` for each old argument name of model ``family`` that ``kwargs`` uses
    (and whose current name it does not also give: such a key is left to be refused)."""
    renames = OLD_KWARGS.get(current_name(family), {})
    if not isinstance(kwargs, dict):
        return {}
    return {old: new for old, new in renames.items() if old in kwargs and new not in kwargs}


def current_kwargs(family: str, kwargs: Any) -> Any:
    """``kwargs`` of model ``family`` with old argument names renamed (a copy when any is)."""
    renames = kwarg_renames(family, kwargs)
    if not renames:
        return kwargs
    return {renames.get(k, k): v for k, v in kwargs.items()}
