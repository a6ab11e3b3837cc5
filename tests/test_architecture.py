"""The house keeps its shape: no import cycle in ufm/ (imports inside functions counted), the executors know no
kind of task, no module over 450 lines (a larger one is split by concept)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
import_cycles = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_cycles)


def test_no_import_cycles():
    assert import_cycles.cycles(ROOT / "ufm") == []


def test_the_engines_know_no_kind():
    graph = import_cycles.import_graph(ROOT / "ufm")
    assert not {m for m in graph["ufm.executors"] if m.startswith("ufm.deep")}
    assert not {m for m in graph["ufm.engine"] if m.startswith("ufm.kinds") or m in (
        "ufm.simulate", "ufm.maps", "ufm.collapse", "ufm.figures", "ufm.optimum", "ufm.solver")}
    below = [m for m, deps in graph.items() if "ufm.figures" in deps]
    assert below == [], f"nothing below the figure registry imports it: {below}"


def test_modules_stay_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "ufm").rglob("*.py")}
    assert not {p: n for p, n in sizes.items() if n > 450}, "a module over 450 lines: split it by concept"


def test_every_module_is_on_the_architecture_page():
    """docs/architecture.md lists every module of ufm/ (by path, or its name inside its package's row)."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = []
    for p in sorted((ROOT / "ufm").rglob("*.py")):
        rel = p.relative_to(ROOT)
        if p.name == "__init__.py" or f"`{rel}`" in page:
            continue
        package = f"`{rel.parent}/`"
        if not (package in page and f"`{p.name}`" in page):
            missing.append(str(rel))
    assert missing == [], f"modules missing from docs/architecture.md: {missing}"


def test_commands_only_parse_call_and_print():
    """No command function over 45 lines (orchestration and validation live in ufm/), and cli/ writes no file."""
    import ast

    long = {}
    for p in (ROOT / "cli").glob("*.py"):
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_command"):
                if node.end_lineno - node.lineno + 1 > 45:
                    long[f"{p.name}:{node.name}"] = node.end_lineno - node.lineno + 1
        text = p.read_text()
        for writer in ("write_json(", "write_npz(", "write_csv(", "save_figure(", ".write_text(", "mark("):
            assert writer not in text, f"{p.name} writes files itself ({writer}); let the library write them"
    assert long == {}, f"command functions over 45 lines: {long}"
