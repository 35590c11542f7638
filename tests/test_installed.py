"""What ``pip install`` puts in the environment is what runs: smoke tests per subcommand.

Every test here runs the installed console script from a temporary working
directory, so nothing can fall back on the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import CHATSH, CHECKOUT, chatsh_env

import chatsh


def run(*args: str, cwd: Path, stdin: bytes = b"",
        timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([CHATSH, *args], cwd=cwd, input=stdin, capture_output=True,
                          timeout=timeout, env=chatsh_env())


def test_chatsh_is_imported_from_the_environment_not_the_checkout():
    imported = Path(chatsh.__file__).resolve()
    from_checkout = imported.is_relative_to(CHECKOUT / "chatsh")
    if from_checkout and not os.environ.get("CI"):
        pytest.skip(f"chatsh is imported from the checkout ({imported}): an editable install")
    assert not from_checkout, f"the suite imports the checkout, not the install: {imported}"
    assert imported.is_relative_to(Path(sys.prefix).resolve())


def test_console_script_is_installed_beside_python():
    assert Path(CHATSH).is_file(), f"no console script at {CHATSH}: is chatsh installed?"


def test_the_distribution_is_chatshell_and_brings_the_chatsh_command():
    """``chatsh`` on PyPI is another project: ``pip install chatshell`` is this one."""
    from importlib import metadata

    scripts = metadata.distribution("chatshell").entry_points.select(group="console_scripts")
    assert [(script.name, script.value) for script in scripts] == [("chatsh", "chatsh.cli:main")]
    assert metadata.version("chatshell") == chatsh.__version__


def test_version_and_python_m_agree(tmp_path):
    script = run("--version", cwd=tmp_path)
    module = subprocess.run([sys.executable, "-m", "chatsh", "--version"], cwd=tmp_path,
                            capture_output=True, timeout=60, env=chatsh_env())
    assert script.returncode == module.returncode == 0, script.stderr + module.stderr
    assert script.stdout.decode().strip() == f"chatsh {chatsh.__version__}"
    assert module.stdout == script.stdout


@pytest.mark.parametrize("args, usage", [
    ([], "usage: chatsh "), (["serve"], "usage: chatsh serve"),
    (["conform"], "usage: chatsh conform"),
])
def test_help_of_each_subcommand(tmp_path, args, usage):
    result = run(*args, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(usage)
    assert "examples:" in result.stdout.decode()


def test_conform_passes_against_serve(serve_process, tmp_path):
    result = run("conform", "--port", str(serve_process), "--max-clients", "64", "--profile",
                 "chatsh", "--strict", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().splitlines()[-1] == "39 passed, 0 failed, 0 warnings, 0 skipped"


def test_script_against_serve(serve_process, tmp_path):
    script = tmp_path / "smoke.txt"
    script.write_text("smoke\n@echobot installed\n!who\n")
    result = run("--port", str(serve_process), "--script", str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "Successfully logged in as smoke!", "The message was sent successfully",
        "From echobot: installed", "There are 2 online users:", "echobot", "smoke"]


def test_embedded_server_from_piped_stdin(tmp_path):
    result = run(cwd=tmp_path, stdin=b"solo\n@echobot alone\n")
    assert result.returncode == 0, result.stderr
    assert "From echobot: alone" in result.stdout.decode().splitlines()


def _sources(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in (root / "chatsh").rglob("*.py")}


@pytest.mark.timeout(300)
def test_wheel_holds_every_module_of_the_checkout(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(CHECKOUT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(tmp_path / "wheel"), str(source)],
                            capture_output=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    [wheel] = (tmp_path / "wheel").glob("chatshell-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if name.endswith(".py")}
    expected = _sources(CHECKOUT)
    assert len(expected) > 20
    assert expected - packaged == set()
