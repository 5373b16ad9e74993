"""neardup completion bash|zsh: the script completes commands, options, choices and files in bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from neardup.cli.main import main

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")


def _script(shell: str, capsys) -> str:
    capsys.readouterr()
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def _complete(script: str, words: list[str], cwd: str) -> list[str]:
    """COMPREPLY of the generated function for ``words`` (the last one being completed)."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (script + f"\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _neardup\n"
               + "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "--noprofile"], input=program, capture_output=True, text=True,
                          cwd=cwd, check=True)
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_options_choices_and_files(capsys, tmp_path):
    script = _script("bash", capsys)
    (tmp_path / "corpus.jsonl").write_text("", encoding="utf-8")
    where = str(tmp_path)
    assert _complete(script, ["neardup", "de"], where) == ["dedup"]
    assert _complete(script, ["neardup", "dedup", "--ke"], where) == ["--keep"]
    assert _complete(script, ["neardup", "dedup", "corpus.jsonl", "--keep", ""], where) == \
        ["first", "longest", "earliest", "cleanest"]
    assert _complete(script, ["neardup", "-q", "dedup", "--engine", "s"], where) == ["spark"]
    assert _complete(script, ["neardup", "completion", ""], where) == ["bash", "zsh"]
    assert _complete(script, ["neardup", "dedup", "cor"], where) == ["corpus.jsonl"]
    assert "--config" in _complete(script, ["neardup", "query", "--c"], where)


def test_the_scripts_name_every_command_and_option_and_parse(capsys):
    from neardup.cli.main import build_parser

    parser = build_parser()
    commands = next(a.choices for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    bash, zsh = _script("bash", capsys), _script("zsh", capsys)
    for name, sub in commands.items():
        assert name in bash
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--"):
                    assert flag in bash, (name, flag)
    subprocess.run(["bash", "-n"], input=bash, text=True, check=True)
    assert zsh.startswith("autoload") and zsh.endswith(bash)
