"""``ufm verify-prop1``: is the published large-n_w limit of SCL with prototypes right?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from ._threads import computing
from ._common import check_figure_out, console, print_json, user_errors
from ._config import with_config_options
from ufm.threads import solver_work
from ufm.prop1_config import Prop1Config


@user_errors
@with_config_options(Prop1Config)
def verify_prop1_command(
    config: Prop1Config,
    out: Optional[Path] = typer.Option(Path("runs/verify-prop1"), help="folder for prop1_gaps.png"),
    as_json: bool = typer.Option(False, "--json", help="print the verdicts and every row as JSON"),
) -> None:
    """Compare exact SCL with prototypes (n_w = 1 ... 10^4) with the published Proposition 1 limit and with
    the limit derived in docs/prop1.md: value and Riemannian-gradient gaps on 16 cases (random and
    near-optimal features, ETF and minority-weighted targets, tau 0.1 and 0.5, two batch compositions)."""
    if out:
        check_figure_out(out)
    from ufm.figures import prop1_gaps, scl_vs_ce_figure  # (torch, matplotlib: once --out is checked)
    from ufm.prop1 import minimize_both, verdicts, verify

    computing(solver_work(4))  # UFMs of k = 4 classes
    rows = verify()
    summary = verdicts(rows)
    with console.status("minimizing the exact loss and both limits in the UFM"):
        mins, ce_rows = minimize_both(config.epochs, config.device)
    figures = [prop1_gaps(out), scl_vs_ce_figure(out, rows=ce_rows)] if out else []
    if as_json:
        print_json({"verdicts": summary, "minimizers": mins, "scl_vs_ce": ce_rows,
                    "figures": [str(f) for f in figures], "rows": rows})
        return
    _print_gaps(summary)
    _print_minimizers(mins, ce_rows)
    for f in figures:
        console.print(f"figure: {f}")


def _print_gaps(summary: list[dict]) -> None:
    """The worst value and gradient gaps of each limit, and the verdicts."""
    from ufm.prop1 import verdict_line

    table = Table(title="worst gap over the cases at the largest n_w (decay exponent in n_w)", box=box.SIMPLE)
    for col in ("anchors", "limit", "value gap", "gradient gap"):
        table.add_column(col, justify="right")
    for entry in summary:
        for name in ("published", "derived"):
            table.add_row(
                "prototypes too" if entry["prototype_anchors"] else "batch only",
                name,
                f"{entry[f'value_gap_{name}_at_largest']:.3g} ({entry[f'value_gap_{name}_slope']:+.2f})",
                f"{entry[f'grad_gap_{name}_at_largest']:.3g} ({entry[f'grad_gap_{name}_slope']:+.2f})",
            )
    console.print(table)
    for entry in summary:
        console.print(verdict_line(entry))


def _print_minimizers(mins: list[dict], ce_rows: list[dict]) -> None:
    """Exact SCL's minimizer against each limit's, and SCL with prototypes against CE with the same classifier."""
    table = Table(title=f"minimizers at n_w = {mins[0]['n_w']:g} (UFM, full batch, k = 4, tau {mins[0]['tau']:g}, "
                        f"{mins[0]['geometry']} target): exact SCL vs each limit's minimizer", box=box.SIMPLE)
    for col in ("anchors", "limit", "largest class-direction angle (deg)", "largest G_M entry gap"):
        table.add_column(col, justify="right")
    for r in mins:
        for name in ("published", "derived"):
            table.add_row("prototypes too" if r["prototype_anchors"] else "batch only", name,
                          f"{r[f'max_angle_deg_{name}']:.3g}", f"{r[f'max_gram_gap_{name}']:.3g}")
    console.print(table)
    table = Table(title="SCL with prototypes vs CE with the same fixed classifier: distance between their G_M",
                  box=box.SIMPLE)
    for col in ("tau", "n_w", "anchors", "SCL to CE", "SCL to G_*", "CE to G_*"):
        table.add_column(col, justify="right")
    for r in ce_rows:
        table.add_row(f"{r['tau']:g}", f"{r['n_w']:g}", "prototypes too" if r["prototype_anchors"] else "batch only",
                      f"{r['distance_scl_to_ce']:.4f}", f"{r['distance_scl_to_target']:.4f}",
                      f"{r['distance_ce_to_target']:.4f}")
    console.print(table)
