"""edgekd's import graph: cycles between modules, imports inside functions, and the modules over 400 lines.

Reads the source with ``ast`` (imports nothing). Module-level imports form the graph; an import
inside a function is counted separately (they hide edges: the cycle check reports both views).

    python bench/import_graph.py [--json bench/results/import_graph.json]
"""

from __future__ import annotations

import argparse
import ast
import json
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgekd"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, modules: set[str]) -> tuple[set[str], set[str], int]:
    """(module-level edkgd imports, in-function edgekd imports, count of in-function import statements)."""
    tree = ast.parse(path.read_text())
    name, is_package = module_name(path), path.name == "__init__.py"
    top, inner, count = set(), set(), 0
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}

    def in_function(node) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(name, is_package, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        local = {t for t in targets if t.split(".")[0] == "edgekd"}
        if in_function(node):
            count += 1
            inner |= local
        else:
            top |= local
    known = lambda ts: {t if t in modules else next((m for m in sorted(modules, key=len, reverse=True)  # noqa: E731
                                                     if t.startswith(m + ".")), t) for t in ts} - {name}
    return known(top), known(inner), count


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# orchestration sits above the wings; a wing importing upward hides the build's real order
LAYERS = {"cli": 3, "pipeline": 2, "matrix": 2, "stages": 1}


def unit(module: str) -> str:
    """edgekd.backends.onnxruntime -> backends: the subpackage (or top-level module) a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edgekd"


def package_view(both: dict[str, set[str]]) -> dict:
    """Cycles between subpackages and upward edges into the orchestration layers, in-function imports included."""
    graph: dict[str, set[str]] = defaultdict(set)
    upward = []
    for src, targets in both.items():
        for dst in targets:
            a, b = unit(src), unit(dst)
            if a == b or "edgekd" in (a, b):
                continue
            graph[a].add(b)
            if LAYERS.get(b, 0) > LAYERS.get(a, 0):
                upward.append(f"{src} -> {dst}")
    return {"subpackage_cycles": cycles(dict(graph)), "upward_edges": sorted(upward)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    top, both, in_function = {}, defaultdict(set), {}
    for p in files:
        t, i, n = imports(p, modules)
        top[module_name(p)] = t
        both[module_name(p)] = t | i
        if n:
            in_function[module_name(p)] = n
    long = {module_name(p): n for p in files if (n := len(p.read_text().splitlines())) > 400}
    result = {"modules": len(modules), "cycles_module_level": cycles(top), "cycles_with_function_imports":
              cycles(dict(both)), "in_function_imports": sum(in_function.values()),
              "in_function_imports_by_module": dict(sorted(in_function.items(), key=lambda kv: -kv[1])),
              "modules_over_400_lines": long, **package_view(dict(both))}
    print(f"modules {result['modules']}; cycles (module level) {len(result['cycles_module_level'])}; "
          f"cycles counting in-function imports {len(result['cycles_with_function_imports'])}; "
          f"in-function imports {result['in_function_imports']}; modules over 400 lines {len(long)}")
    print(f"subpackage cycles {len(result['subpackage_cycles'])}; upward edges into stages/pipeline/matrix/cli "
          f"{len(result['upward_edges'])}")
    for comp in result["subpackage_cycles"]:
        print("  subpackage cycle:", " <-> ".join(comp))
    for edge in result["upward_edges"]:
        print("  upward:", edge)
    for comp in result["cycles_with_function_imports"]:
        print("  cycle:", " <-> ".join(comp) if len(comp) < 6 else f"{len(comp)} modules incl. {', '.join(comp[:5])}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
