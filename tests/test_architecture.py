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
