"""The package's shape, as the README and the package docstring promise it: a layout table that matches
the tree, no oversized modules, no import cycles between subpackages, no import upward into the stages."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgekd"


def _graph_tool():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "bench" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


def _layout_paths() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Layout", 1)[1].split("\n\n", 2)[1]
    return {p.rstrip("/") for row in table.splitlines() for p in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_readme_layout_table_names_every_part_of_the_package_and_nothing_else():
    listed = {p for p in _layout_paths() if p.startswith("edgekd/")}
    present = {f"edgekd/{p.name}" for p in PACKAGE.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.name != "__init__.py")}
    assert listed - present == set(), "the README lists paths that are not in the tree"
    assert present - listed == set(), "parts of the package missing from the README's layout table"


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_no_import_cycle_between_subpackages_and_no_import_upward_into_the_stages():
    graph = _graph_tool()
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {graph.module_name(p) for p in files}
    both = {}
    for p in files:
        top, inner, _ = graph.imports(p, modules)
        both[graph.module_name(p)] = top | inner
    view = graph.package_view(both)
    assert view["subpackage_cycles"] == []
    assert view["upward_edges"] == []


def test_the_command_line_and_the_typed_vocabulary_load_without_torch():
    """``edgekd --help`` answers at once: the CLI and ``edgekd.schema`` import no torch until a command runs."""
    import subprocess

    code = ("import sys, edgekd.cli, edgekd.schema; "
            "print(sorted(m for m in ('torch', 'onnx', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
