"""``ufm verify-prop1``: is the published large-n_w limit of SCL with prototypes right?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from cli._common import console, print_json, user_errors
from ufm.figures import prop1_gaps
from ufm.prop1 import verdict_line, verdicts, verify


@user_errors
def verify_prop1_command(
    out: Optional[Path] = typer.Option(Path("runs/verify-prop1"), help="folder for prop1_gaps.png"),
    as_json: bool = typer.Option(False, "--json", help="print the verdicts and every row as JSON"),
) -> None:
    """Compare exact SCL with prototypes (n_w = 1 ... 10^4) with the published Proposition 1 limit and with
    the limit derived in docs/prop1.md: value and Riemannian-gradient gaps on 16 cases (random and
    near-optimal features, ETF and minority-weighted targets, tau 0.1 and 0.5, two batch compositions)."""
    rows = verify()
    summary = verdicts(rows)
    figure = prop1_gaps(out) if out else None
    if as_json:
        print_json({"verdicts": summary, "figure": str(figure) if figure else None, "rows": rows})
        return
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
    if figure:
        console.print(f"figure: {figure}")
