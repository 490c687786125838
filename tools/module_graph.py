"""The module graph of search/ and indexers/: how many modules, which form import cycles
(imports inside functions count), and which project imports sit inside functions.

    python tools/module_graph.py [REPO] [--list]

The import-linter contract in pyproject.toml keeps the layers; this script counts what a
reviewer of the layering asks about, for a tree at any commit (e.g. a `git worktree`).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

PACKAGES = ("search", "indexers")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(imported name, whether the import sits inside a function) for every import."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(sub) for sub in ast.walk(node) if sub is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in inside) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(f"{node.module}.{a.name}", id(node) in inside) for a in node.names]
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    return groups


def main(argv: list[str]) -> int:
    root = Path(next((a for a in argv if not a.startswith("--")), ".")).resolve()
    paths = [p for package in PACKAGES for p in (root / package).rglob("*.py")]
    modules = {module_name(root, p): p for p in paths}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in modules}
    in_functions: list[tuple[str, str]] = []
    deferred = Counter()
    for module, path in modules.items():
        for name, inside in imports(ast.parse(path.read_text())):
            target = resolve(name)
            if target and target != module:
                edges[module].add(target)
                if inside:
                    in_functions.append((module, target))
            elif target is None and inside and name.split(".")[0] not in PACKAGES:
                deferred[name.split(".")[0]] += 1
    groups = cycles(edges)
    print(f"modules: {len(modules)}")
    print(f"import cycles: {len(groups)} ({sum(map(len, groups))} modules in them)")
    for group in groups:
        print("   ", ", ".join(group))
    print(f"project imports inside functions: {len(in_functions)}")
    print(f"third-party imports inside functions: {sum(deferred.values())} {dict(deferred)}")
    if "--list" in argv:
        for module, target in sorted(in_functions):
            print(f"    {module} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
