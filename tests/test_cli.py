"""The `afvsr` dispatcher: every command is reachable, and the command list imports nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from afvsr.cli import COMMANDS, main


def test_help_lists_every_command_without_importing_any_or_torch():
    code = (
        "import sys\n"
        "from afvsr.cli import main\n"
        "assert main(['--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.endswith('.cli')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    help_text, imported = out.stdout.rsplit("\n", 2)[0], out.stdout.strip().splitlines()[-1]
    assert imported == "['afvsr.cli']"  # no command module, no torch
    assert all(f"    {name}" in help_text for name in COMMANDS)


def test_upscale_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from afvsr.cli import main\n"
        "assert main(['upscale', '--help']) == 0\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("usage: afvsr upscale") and "--tile-overlap" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_its_parser_and_help(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: afvsr {name}") and "options:" in out


def test_no_command_prints_the_list_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("afvsr: error: argument COMMAND: invalid choice: 'nope'")
    assert err.count("\n") == 1


def test_threads_below_one_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output-dir", str(out), "--threads", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == "afvsr: error: expected --threads >= 1, got 0\n" and not out.exists()
