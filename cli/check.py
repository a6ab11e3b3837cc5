"""``ufm check``: the exact multiplicity-aware loss against the naive concatenation, on one batch."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._threads import computing
from ._common import console, max_memory_option, print_json, user_errors
from ufm.threads import loss_work
from ._config import with_config_options
from ufm.spec import CheckConfig


@user_errors
@with_config_options(CheckConfig)
def check(
    config: CheckConfig,
    max_memory_gb: Optional[float] = max_memory_option(),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Check scl_loss (copies as multiplicities) against the literal concatenation of n_w copies."""
    computing(loss_work(config.n, config.k * config.n_w, config.d))  # the naive loss's materialized copies
    from ufm.reference import run_check

    result = run_check(config, max_memory_gb)
    ok = result["agree"]
    if as_json:
        print_json(result)
    else:
        c = config
        table = Table(title=f"SCL with {c.k} prototypes x {c.n_w} copies, batch n={c.n}, d={c.d}, tau={c.tau:g}")
        table.add_column("")
        table.add_column("ufm (multiplicities)", justify="right")
        table.add_column("naive (concatenated)", justify="right")
        table.add_row("loss", f"{result['loss_ufm']:.12g}", f"{result['loss_naive']:.12g}")
        table.add_row("rows in the batch", str(result["rows_ufm"]), str(result["rows_naive"]))
        table.add_row("time, loss + gradient", f"{result['time_ufm_s'] * 1e3:.2f} ms", f"{result['time_naive_s'] * 1e3:.2f} ms")
        console.print(table)
        console.print(
            f"|loss difference| = {result['loss_abs_diff']:.2e}, max |gradient difference| = "
            f"{result['grad_max_abs_diff']:.2e}: " + ("[green]agree[/green]" if ok else "[red]DISAGREE[/red]")
        )
    if not ok:
        raise typer.Exit(1)
