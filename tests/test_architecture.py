"""The house keeps its shape: no import cycle in ufm/ (imports inside functions counted), the executors know no
kind of task, no module over 450 lines (a larger one is split by concept); the tests mirror the house: every command
has its tests/cli/test_<command>.py and every module of ufm/ is imported by a test."""

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


def _commands() -> list[str]:
    """The command names of ``ufm`` (the keys of the dict ``cli/main.py:commands()`` returns), read without
    importing the commands."""
    import ast

    tree = ast.parse((ROOT / "cli" / "main.py").read_text())
    (function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "commands"]
    (returned,) = [n.value for n in ast.walk(function) if isinstance(n, ast.Return)]
    return [key.value for key in returned.keys]


def test_every_command_has_its_own_test_file():
    """tests/cli/test_<command>.py (``-`` as ``_``) for every command: its flags, output and refusals are tested there."""
    names = _commands()
    assert len(names) >= 17 and "solve-sweep" in names
    missing = [n for n in names if not (ROOT / "tests" / "cli" / f"test_{n.replace('-', '_')}.py").is_file()]
    assert missing == [], f"commands without tests/cli/test_<command>.py: {missing}"


def _imported_by_tests() -> set[str]:
    """Every module name a test file imports: ``import a.b``, ``from a.b import c`` (a.b and a.b.c)."""
    import ast

    seen: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                seen |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                seen |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return seen


def test_every_module_is_imported_by_a_test():
    """Each module of ufm/ (the commands apart: tests/cli) is imported by at least one test file, the tests of its
    own concept (tests/test_<module>.py, tests/deep/, tests/solver/, tests/kinds/)."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "ufm").rglob("*.py")
               if p.name != "__init__.py" and "cli" not in p.relative_to(ROOT).parts}
    assert "ufm.grid" in modules and "ufm.solver.problem" in modules
    missing = sorted(modules - _imported_by_tests())
    assert missing == [], f"modules of ufm/ that no test imports: {missing}"
