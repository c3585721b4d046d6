"""models/ and training/ import each other in one direction only, and every import is at the top
of its file (an import inside a function can hide a circle)."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "training")


def imports_of(path: Path) -> tuple:
    """(modules imported at the top of the file, imports found inside functions or classes)."""
    tree = ast.parse(path.read_text())
    module_level = set()
    blocks = list(tree.body)
    while blocks:                      # the module's own statements, also inside try/if blocks
        node = blocks.pop()
        module_level.add(node)
        if isinstance(node, (ast.Try, ast.If)):
            blocks += node.body + node.orelse + getattr(node, "finalbody", [])
            blocks += [statement for handler in getattr(node, "handlers", []) for statement in handler.body]
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] + [f"{node.module}.{alias.name}" for alias in node.names])
            if node in module_level:
                top.update(names)
            else:
                nested.append((node.lineno, names[0]))
    return top, nested


def graph() -> dict:
    modules = {f"{p.parent.name}.{p.stem}": p for package in PACKAGES
               for p in sorted((REPO / package).glob("*.py")) if p.stem != "__init__"}
    return {name: {m for m in imports_of(path)[0] if m in modules} for name, path in modules.items()}, modules


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_inside_a_function(package):
    found = {p.name: imports_of(p)[1] for p in (REPO / package).glob("*.py")}
    assert {name: nested for name, nested in found.items() if nested} == {}


def test_no_import_circle():
    edges, _ = graph()
    state = {}

    def visit(module, path):
        if state.get(module) == "open":
            raise AssertionError("import circle: " + " -> ".join(path + [module]))
        if state.get(module) == "done":
            return
        state[module] = "open"
        for target in sorted(edges[module]):
            visit(target, path + [module])
        state[module] = "done"
    for module in sorted(edges):
        visit(module, [])
    assert len(edges) > 10 and any(edges.values())       # the graph was read
