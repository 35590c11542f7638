"""The package's shape: imports form no circle and never point up.

Layers, top first: ``cli``; the front ends in ``modes``; ``ui`` (the shell's
pieces) and ``conform`` (the conformance cases); the rest, the core. A module may
import from its own layer or those below, never from above; and following imports,
lazy ones inside functions included, never leads back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import chatsh

ROOT = Path(chatsh.__file__).parent
LAYERS = {"cli": 3, "__main__": 3, "modes": 2, "ui": 1, "conform": 1}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of chatsh and the chatsh modules it imports, anywhere in it."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("chatsh"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                if not base.startswith("chatsh"):
                    continue
                for alias in node.names:  # "from . import protocol" names a module
                    candidate = f"{base}.{alias.name}"
                    module_file = ROOT.parent / (candidate.replace(".", "/") + ".py")
                    found.add(candidate if module_file.exists() else base)
        graph[name] = {other for other in found if other != name}
    return graph


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return LAYERS.get(part, 0)


def test_no_import_points_up():
    upward = [(module, other) for module, others in imports().items() for other in others
              if layer(other) > layer(module)]
    assert upward == []


def test_no_circle_of_imports():
    graph = imports()
    state: dict[str, str] = {}
    circles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if other not in graph:
                continue
            if state.get(other) == "open":
                circles.append([*trail[trail.index(other):], other])
            elif other not in state:
                visit(other, [*trail, other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_walk_sees_the_imports_it_judges():
    """The checks above would pass on an empty graph: make sure it is not one."""
    graph = imports()
    assert "chatsh.session" in graph["chatsh.engine"]
    assert "chatsh.modes.jsonl" in graph["chatsh.cli"]  # a lazy import, inside a function
    assert "chatsh.protocol" in graph["chatsh.frontend"]  # "from . import protocol"
