"""README tables that a command prints, checked against that command's output."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from extractors.__main__ import main as extractors_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def indented_block_after(marker: str) -> list[str]:
    """The 4-space indented block that follows the line holding ``marker``."""
    lines = README[README.index(marker) :].splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("    ") and x.strip())
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return block


def test_extractor_table_is_what_extractors_list_prints(capsys):
    assert extractors_main(["list"]) == 0
    printed = capsys.readouterr().out.rstrip("\n").splitlines()
    assert indented_block_after("python -m extractors list ") == printed


def test_console_scripts_table_lists_exactly_the_installed_scripts():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    rows = dict(re.findall(r"^\| `(trajgen[\w-]*)` \| `python -m ([\w.]+)` \|$", README, re.M))
    assert set(rows) == set(scripts)
    for name, module in rows.items():
        target = scripts[name].split(":")[0].removesuffix(".__main__")
        # python -m train.jepa runs train.jepa.train's main
        assert target == {"train.jepa": "train.jepa.train"}.get(module, module), name
