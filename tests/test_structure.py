"""How the package is put together, read from its source: each rule has one home, and no two
subpackages import each other (directly or round a longer loop), at module level or inside a function."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "tweetform"


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def unit(module: str) -> str:
    """What import loops are counted between: tweetform's subpackages and top-level modules."""
    return ".".join(module.split(".")[:2])


def imports(tree: ast.Module, module: str) -> set[str]:
    """Every tweetform module ``module`` imports, at the top or inside a function (either can close a loop)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # "from tweetform import state"
    return {name for name in found if name.startswith("tweetform.")}


def loops(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_no_two_subpackages_import_each_other():
    trees = modules()
    known = set(trees)
    edges: dict[str, set[str]] = defaultdict(set)
    for module, tree in trees.items():
        for target in imports(tree, module):
            while target not in known and "." in target:  # "tweetform.state.uses_redis": the module is tweetform.state
                target = target.rsplit(".", 1)[0]
            if unit(target) != unit(module) and target != "tweetform":
                edges[unit(module)].add(unit(target))
    assert loops(edges) == []


def test_redis_url_is_read_in_one_place():
    """Whether a crawl is distributed is config.uses_redis's answer everywhere (config.redis_url the URL)."""
    readers = sorted(str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*.py")
                     if '"REDIS_URL")' in path.read_text(encoding="utf-8") and "sandbox" not in path.parts)
    assert readers == ["tweetform/config.py"]
