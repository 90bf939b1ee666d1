"""The house's shape: no import circle (module- or function-level), rooms of a readable size, and the package top
holding only core modules and wings (docs/reference/layout.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "harness"

#: Modules that may sit at the package top: the command line and the core every wing depends on.
TOP_LEVEL = {
    "__init__", "__main__", "cli", "config", "errors", "resources", "fields", "tracks", "tokenizer", "model",
    "baselines",
}  # fmt: skip
#: Rooms allowed past MAX_LINES, each with the reason.
LARGE: dict[str, str] = {}
MAX_LINES = 450


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its body (inside functions too)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                if target.split(".")[0] == root.name and (found := resolve(target)) and found != mod:
                    graph[mod].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_the_package() -> None:
    assert cycles(import_graph()) == []


def test_the_circle_check_sees_function_level_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "harness"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from harness.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (pkg / "c.py").write_text("import harness.a\n")
    assert cycles(import_graph(pkg)) == [["harness.a", "harness.sub.b"]]


def test_rooms_are_readable_and_the_top_holds_core_only() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert {k: v for k, v in long.items() if k not in LARGE} == {}
    loose = {p.stem for p in PACKAGE.glob("*.py")} - TOP_LEVEL
    assert loose == set(), f"modules at the package top that belong to a wing: {sorted(loose)}"


def test_benchmarks_examples_and_scripts_import_what_exists() -> None:
    """Files outside the package name the package's modules and symbols that exist (a reorganisation that moves a
    name breaks them only at run time otherwise: benchmarks/eval_bench.py did)."""
    import importlib

    missing = []
    for folder in ("benchmarks", "examples", "scripts"):
        for path in sorted((PACKAGE.parent / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness")):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if (
                        not hasattr(module, alias.name)
                        and importlib.util.find_spec(f"{node.module}.{alias.name}") is None
                    ):
                        missing.append(f"{folder}/{path.name}: {node.module}.{alias.name}")
    assert not missing, missing
