"""The package's shape: commands at the top, concerns in folders, no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

import litpredict

PACKAGE = Path(litpredict.__file__).parent
COMMANDS = {"predict", "train", "reproduce", "ensemble", "average", "compare"}


def _module_name(path: Path) -> str:
    parts = ["litpredict", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "conf" not in p.parts}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """litpredict modules ``path`` imports anywhere in it (function bodies included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a list of module names), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name], _ = 1, stack.append(name)
        for child in sorted(graph.get(name, ())):
            if state.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if child not in state and (found := visit(child)):
                return found
        state[name], _ = 2, stack.pop()
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_no_module_imports_itself_back() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_check_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_top_holds_only_the_commands() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top == COMMANDS


def test_folders_never_import_the_commands() -> None:
    commands = {f"litpredict.{name}" for name in COMMANDS}
    upward = {
        f"{name} -> {target}"
        for name, targets in _graph().items()
        if name.count(".") > 1
        for target in targets & commands
    }
    assert not upward


def test_every_folder_says_what_lives_there() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "imports" in doc.lower(), f"{init} should say what it holds and may import"
