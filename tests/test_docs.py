"""The docs: the module map names every module, the figures table is generated, the site builds."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import CHECKOUT

ARCHITECTURE = CHECKOUT / "docs" / "architecture.md"
MKDOCS = str(Path(sys.executable).parent / "mkdocs")
"""The mkdocs that the test extra put beside this Python."""


def mapped_paths() -> set[str]:
    """The module paths the architecture page's map names, as `chatsh/...py`."""
    return set(re.findall(r"`(chatsh/[\w/]+\.py)`", ARCHITECTURE.read_text()))


def module_paths() -> set[str]:
    return {path.relative_to(CHECKOUT).as_posix() for path in (CHECKOUT / "chatsh").rglob("*.py")}


def test_every_module_is_in_the_architecture_map():
    assert sorted(module_paths() - mapped_paths()) == []


def test_the_architecture_map_names_no_module_that_is_gone():
    assert sorted(mapped_paths() - module_paths()) == []


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = (CHECKOUT / "README.md").read_text()
    assert len(readme.splitlines()) <= 320
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert "docs/architecture.md" in targets
    assert [target for target in targets if not (CHECKOUT / target).exists()] == []


def test_the_figures_table_is_made_from_the_figures(monkeypatch):
    """bench/figures.md is what bench/sticks.py writes from bench/figures.json, not a copy."""
    spec = importlib.util.spec_from_file_location("sticks", CHECKOUT / "bench" / "sticks.py")
    assert spec is not None and spec.loader is not None
    sticks = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "sticks", sticks)  # its dataclass looks itself up there
    spec.loader.exec_module(sticks)
    saved = json.loads((CHECKOUT / "bench" / "figures.json").read_text())
    table = (CHECKOUT / "bench" / "figures.md").read_text()
    assert table == sticks.table(saved)
    assert all(f"| {figure['figure']:.2f} |" in table for figure in saved.values())


def test_the_site_builds_strictly(tmp_path):
    """No broken link or anchor, no page left out of the navigation, every snippet found."""
    built = subprocess.run([MKDOCS, "build", "--strict", "-f", str(CHECKOUT / "mkdocs.yml"),
                            "-d", str(tmp_path / "site")], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    assert built.returncode == 0, built.stderr
    measurements = (tmp_path / "site" / "measurements" / "index.html").read_text()
    assert "bigmsg growth" in measurements  # bench/figures.md, included


def test_ci_runs_the_readmes_test_command():
    """Every step of the README's second set-up command is a step of .ci/run's locked
    install and checks, so what the README promises is what CI proves."""
    readme = (CHECKOUT / "README.md").read_text()
    command = next(block for block in re.findall(r"```\n(.*?)```", readme, re.S)
                   if "--require-hashes" in block)
    steps = [" ".join(step.split()) for step in command.replace("\\\n", " ").split("&&")]
    ci = " ".join((CHECKOUT / ".ci" / "run").read_text().replace("\\\n", " ").split())
    assert [step for step in steps if step.replace("pip install ", "pip install -q ") not in ci
            ] == []


def test_the_slow_reader_bound_is_stated_as_the_server_computes_it():
    """The pages said a slow reader is dropped past twice --max-line; the server's bound
    is twice --max-line plus 1 MiB (a 64 KiB --max-line drops at 1,179,648 bytes)."""
    from chatsh.serverconfig import ServerConfig

    assert ServerConfig(max_line=65536).max_queue == 2 * 65536 + 1024 * 1024
    for page in ("server.md", "guarantees.md"):
        text = " ".join((CHECKOUT / "docs" / page).read_text().split())
        assert "passes twice `--max-line` plus 1 MiB" in text, page
