"""The package's imports run one way: no module imports itself back through others (no cycles,
imports inside functions included), and no package imports one above it in :data:`LAYERS`."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO_ROOT

# Bottom to top: a package may import those below it, never those above.
LAYERS = [
    "islr",  # __version__
    "islr.landmarks",
    "islr.errors",
    "islr.pretrained",
    "islr.ray_cluster",
    "islr.configs",
    "islr.streaming",
    "islr.features",
    "islr.extract",
    "islr.datasets",
    "islr.models",
    "islr.modelfile",
    "islr.vocabulary",
    "islr.export",
    "islr.evaluation",
    "islr.inference",
    "islr.training",
    "islr.serving",
    "islr.cli",
]


def modules() -> dict[str, Path]:
    root = REPO_ROOT / "islr"
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The islr modules a file imports, anywhere in it; ``from pkg import name`` counts as an
    import of the submodule ``pkg.name`` when there is one, else of ``pkg``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "islr"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "islr":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_every_package_has_a_layer():
    missing = {package_of(m) for m in modules()} - set(LAYERS)
    assert not missing, f"add these packages to LAYERS: {sorted(missing)}"


def test_no_package_imports_a_package_above_it():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if rank[package_of(target)] > rank[package_of(module)]
    )
    assert not upward, "imports running up a layer:\n" + "\n".join(upward)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` as a path that ends where it starts, or None."""
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state[nxt] == 1:
                return path[path.index(nxt) :] + [nxt]
            if state[nxt] == 0 and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if state[node] == 0 and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles_between_modules():
    # A package's __init__ imports its modules to hand their names on; a module importing its
    # own package's __init__ would close a loop through it, and is a cycle like any other.
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_nothing_imports_the_cli():
    users = sorted(m for m, t in graph().items() if not m.startswith("islr.cli") and any(
        x.startswith("islr.cli") for x in t))  # fmt: skip
    assert not users, f"these import islr.cli: {users}"
