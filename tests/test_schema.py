"""``afvsr.schema.Field``: one declaration per config key, one error form."""

from __future__ import annotations

import pytest

from afvsr.errors import AfvsrError
from afvsr.schema import REQUIRED, ConfigError, Field, check_section

FIELDS = {
    "steps": Field(type=int, gt=0, help="required"),
    "lr": Field(1e-3, ge=0, help="a float accepts integers"),
    "betas": Field([0.9, 0.99], ge=0, lt=1, length=(2, 2), help="two numbers"),
    "mode": Field("a", choices=("a", "b"), help="a choice"),
    "path": Field("", help="not set"),
    "flag": Field(False, help="a boolean"),
}


def test_defaults_conversion_and_not_set():
    out = check_section({"steps": 3, "lr": 1, "path": None}, FIELDS, "s", "f.toml")
    assert out == {
        "steps": 3,
        "lr": 1.0,
        "betas": [0.9, 0.99],
        "mode": "a",
        "path": "",
        "flag": False,
    }
    assert isinstance(out["lr"], float)
    out["betas"].append(0.5)  # a fresh copy of the default each time
    assert check_section({"steps": 1}, FIELDS, "s")["betas"] == [0.9, 0.99]
    assert FIELDS["steps"].default is REQUIRED and FIELDS["flag"].types == (bool,)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "f.toml: [s] missing required key 'steps'"),
        ({"steps": 0}, "f.toml: [s] steps: expected a value > 0, got 0"),
        ({"steps": True}, "f.toml: [s] steps: expected an integer, got True"),
        ({"steps": 1, "lr": "x"}, "f.toml: [s] lr: expected a number, got 'x'"),
        ({"steps": 1, "betas": [0.9]}, "f.toml: [s] betas: expected 2 items, got [0.9]"),
        ({"steps": 1, "betas": [0.9, 1]}, "f.toml: [s] betas[1]: expected a value < 1, got 1.0"),
        ({"steps": 1, "mode": "c"}, "f.toml: [s] mode: expected one of ['a', 'b'], got 'c'"),
        ({"steps": 1, "flag": 1}, "f.toml: [s] flag: expected a boolean, got 1"),
        ({"steps": 1, "nope": 1}, "f.toml: [s] unknown key 'nope' (known keys: steps, lr, "),
    ],
)
def test_one_error_form(values, message):
    with pytest.raises(ConfigError) as info:
        check_section(values, FIELDS, "s", "f.toml")
    assert str(info.value).startswith(message)
    assert isinstance(info.value, AfvsrError) and isinstance(info.value, ValueError)


def test_describe_says_type_and_constraints():
    assert FIELDS["betas"].describe() == "list of float, >= 0, < 1, 2 items"
    assert FIELDS["mode"].describe() == "str, one of 'a', 'b'"
