"""A fast start: ``ufm --help``, every command's ``--help`` and the refusals of bad input that the options alone
decide answer without importing torch, cvxpy, matplotlib or scipy (a command imports them when it computes); the
public names of ``ufm`` still resolve (lazily)."""

import json
import subprocess
import sys
from pathlib import Path

import ufm
from ufm.collapse_config import CollapseMapConfig
from ufm.map_config import MapCell
from ufm.prop1_config import Prop1Config

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "cvxpy", "matplotlib", "scipy")

# one bad input per command that takes options, and the words of its one-line refusal
REFUSALS = {
    "simulate": (["--k", "1"], "--k must be >= 2"),
    "sweep": (["--grid", "gamma=1,2"], "grid field gamma has no effect"),
    "solve": (["--solver", "X"], "--solver 'X' is not one of"),
    "solve-sweep": (["--grid", "tau=-1"], "--tau must be > 0"),
    "gather": (["/nonexistent-ufm-folder"], "does not exist"),
    "agree": (["--n-w", "0.5"], "with prototype anchors --n-w must be 0 or >= 1"),
    "verify-prop1": (["--device", "tpu"], "--device 'tpu' is not a device"),
    "figures": (["--name", "bogus"], "unknown figures"),
    "train": (["--head", "x"], "--head 'x' is not one of linear, relu"),
    "deep-figures": (["/nonexistent-ufm-run"], "does not exist"),
    "check": (["--k", "0"], "--k must be >= 1"),
    "copies": (["--counts", "5"], "--counts needs at least 2 classes"),
    "design-prototypes": (["--n-w", "0.5"], "--n-w must be >= 1"),
    "collapse-map": (["--seeds", "-1"], "--seeds must be in [0, 1000]"),
    "map": (["--tau", "1", "--tau", "1"], "--tau repeats a value"),
    "study": (["--setting", "bogus"], "--setting must be one of"),
    "study-report": (["--summaries", "/nonexistent-ufm-records"], "is not a folder"),
}
# refusals of other kinds: an unknown option value's type, a repeated option, a bad --out, conflicting options,
# an unknown preset, a typed option without effect
MORE = [
    (["simulate", "--k", "x"], "Invalid value for '--k'"),
    (["simulate", "--k", "3", "--k", "4"], "--k is given twice"),
    (["simulate", "--out", "/proc/ufm-cannot-write"], "cannot be written"),
    (["solve", "--out", "/proc/ufm-cannot-write"], "cannot be written"),
    (["simulate", "--loss", "ce", "--anchors", "batch"], "--anchors"),
    (["figures", "--runs", "x", "--list"], "--runs does not combine with --list"),
    (["train", "--preset", "nope"], "unknown --preset 'nope'"),
    (["collapse-map", "--k", "1"], "--k must be >= 2"),
    (["verify-prop1", "--out", "/proc/ufm-cannot-write"], "/proc/ufm-cannot-write"),
    (["train", "--nproc", "0"], "--nproc must be >= 1"),
    (["design-prototypes", "--batching", "x"], "No such option: --batching"),
    (["copies", "--solver", "X"], "--solver 'X' is not one of"),
    (["map", "--n-w", "-1"], "--n-w must be >= 0"),
    (["collapse-map", "--n-major", "3", "--ratio", "10"], "minority classes would have n // R = 3 // 10 = 0"),
    (["study", "--setting", "cifar10", "--arms", "bogus"], "--arms takes a comma list"),
    *[([*args, "--n-major", "3", "--ratio", "10"], "minority classes would have n // R = 3 // 10 = 0") for args in (
        ["simulate"], ["solve"], ["copies"], ["design-prototypes"], ["sweep", "--grid", "tau=1,2"],
        ["solve-sweep", "--grid", "tau=1,2"])],
    *[([*args, "--out", "/proc/ufm-cannot-write"], "cannot be written") for args in (
        ["map"], ["collapse-map"], ["sweep"], ["solve-sweep", "--grid", "tau=1,2"], ["train"],
        ["study", "--setting", "cifar10"])],
    (["nonsense-command"], "No such command"),
    (["agree", "--n-w", "1e10"], "beyond what the float64 solvers resolve"),
    (["figures", "--list", "--threads", "2"], "--list does not combine with --threads"),
    (["figures", "--runs", "x", "--threads", "2"], "--runs does not combine with --threads"),
]

# each invocation through the typer app in ONE fresh interpreter: exit code, last output line, heavy modules loaded
DRIVER = r"""
import json, sys
from typer.testing import CliRunner
from ufm.cli.main import COMMANDS, app
heavy = %r
out = []
for args in json.loads(sys.argv[1]) + [[name, "--help"] for name in COMMANDS] + [["--help"]]:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    text = result.output.strip()
    out.append({"args": args, "code": result.exit_code, "text": text,
                "heavy": sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy})})
print(json.dumps({"runs": out, "commands": list(COMMANDS)}))
""" % (HEAVY,)


def _invoke_all() -> dict:
    cases = [[name, *args] for name, (args, _) in REFUSALS.items()] + [args for args, _ in MORE]
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_help_and_refusals_answer_without_the_heavy_libraries():
    report = _invoke_all()
    assert sorted(report["commands"]) == sorted(REFUSALS), "every command has a refusal here"
    expected = {tuple([name, *args]): words for name, (args, words) in REFUSALS.items()}
    expected.update({tuple(args): words for args, words in MORE})
    for run in report["runs"]:
        args, text = run["args"], run["text"]
        assert run["heavy"] == [], f"ufm {' '.join(args)} imported {run['heavy']}"
        if args[-1] == "--help":
            assert run["code"] == 0 and "Usage:" in text, (args, text)
            continue
        assert run["code"] == 2, (args, text)
        assert text.startswith("error:") and len(text.splitlines()) == 1 and "Traceback" not in text, (args, text)
        assert expected[tuple(args)] in text, (args, text)


def test_the_ufm_command_starts_without_torch():
    """The console script's own path (``ufm.cli.main.run``): a refusal in a fresh process, nothing heavy loaded."""
    code = ("import sys; from ufm.cli.main import run\nsys.argv = ['ufm', 'check', '--tau', '0']\ntry:\n    run()\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.splitlines() == ["exit 2", "[]"], (proc.stdout, proc.stderr)
    assert proc.stderr.strip() == "error: --tau must be > 0, got 0"


def test_every_public_name_resolves():
    """``ufm.__all__`` (lazy re-exports, PEP 562): each name is an attribute and importable with ``from ufm``."""
    namespace: dict = {}
    exec("from ufm import *", namespace)
    for name in ufm.__all__:
        assert getattr(ufm, name) is not None, name
        assert name in namespace, name
    assert callable(ufm.scl_loss) and callable(ufm.run)


def test_configs_of_heavy_modules_are_the_same_classes():
    """The configs moved to torch-free modules are still importable where they were."""
    from ufm.collapse import CollapseMapConfig as FromCollapse
    from ufm.maps import MapCell as FromMaps
    from ufm.prop1 import Prop1Config as FromProp1

    assert (FromCollapse, FromMaps, FromProp1) == (CollapseMapConfig, MapCell, Prop1Config)


def test_the_startup_benchmark_reports_every_row(tmp_path):
    out = tmp_path / "startup.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_startup.py"), "--repeats", "1", "--json", str(out)],
                   check=True, capture_output=True, timeout=120)
    rows = {r["command"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["ufm simulate --k 1 (refused)"]["exit_code"] == 2 and rows["ufm --help"]["exit_code"] == 0
    assert rows['python -c "import torch"']["of_import_torch"] == 1.0
    assert all(r["median_s"] > 0 for r in rows.values()) and len(rows) == 6
