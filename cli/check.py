"""``ufm check``: the exact multiplicity-aware loss against the naive concatenation, on one batch."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ._common import console, max_memory_option, print_json, user_errors
from ufm._checks import check_memory
from ufm.geometry import load_gram, make_gram
from ufm.reference import check_against_reference


def _memory_estimate(k: int, n: int, d: int, n_w: int) -> float:
    """Bytes of the check, float64: the naive loss keeps (anchor, positive, other) terms for each of the
    n + k n_w materialized rows (about k (n / k + n_w)^2 positive pairs with random labels), the fast loss an
    (n + k) x (n + k) similarity matrix, plus the materialized copies."""
    rows = n + k * n_w
    pairs = k * (n / k + n_w) ** 2
    return 8 * (3 * pairs * rows + 3 * rows * rows + 6 * (n + k) ** 2 + 3 * rows * d)


@user_errors
def check(
    k: int = typer.Option(10, help="number of classes (prototypes)"),
    n: int = typer.Option(32, help="batch size"),
    d: int = typer.Option(16, help="embedding dimension"),
    n_w: int = typer.Option(50, "--n-w", help="copies of each prototype in the batch"),
    tau: float = typer.Option(0.5, help="temperature"),
    geometry: str = typer.Option("etf", help="target Gram G_*: etf, orthogonal or minority"),
    gram_file: Optional[Path] = typer.Option(None, help="a k x k Gram (.npy/.csv/.txt) instead of --geometry"),
    batch_anchors_only: bool = typer.Option(False, help="prototypes are not anchors"),
    seed: int = typer.Option(0, help="random seed"),
    max_memory_gb: Optional[float] = max_memory_option(),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Check scl_loss (copies as multiplicities) against the literal concatenation of n_w copies."""
    for flag, value in (("--k", k), ("--n", n), ("--d", d)):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if n_w < 0:
        raise ValueError(f"--n-w (copies of each prototype) must be >= 0, got {n_w}")
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"--tau must be a finite number > 0, got {tau}")
    if gram_file is not None and geometry != "etf":
        raise ValueError("--gram-file and --geometry both give G_*; drop one of them")
    check_memory(_memory_estimate(k, n, d, n_w), f"the check (k = {k}, n = {n}, d = {d}, n_w = {n_w}; the naive "
                 f"loss materializes {n + k * n_w} rows)", "lower --n, --n-w, --k or --d", max_memory_gb)
    if gram_file:
        gram = load_gram(gram_file)
        if len(gram) != k:
            raise ValueError(f"the Gram in {gram_file} is {len(gram)} x {len(gram)} but --k is {k}; pass --k {len(gram)}")
    else:
        gram = make_gram(geometry, k, counts=list(range(k, 0, -1)))
    result = check_against_reference(gram, n, d, n_w, tau, not batch_anchors_only, seed)
    ok = result["loss_abs_diff"] <= 1e-9 * max(1.0, abs(result["loss_naive"])) and result["grad_max_abs_diff"] <= 1e-9
    result["agree"] = ok
    if as_json:
        print_json(result)
    else:
        table = Table(title=f"SCL with {len(gram)} prototypes x {n_w} copies, batch n={n}, d={d}, tau={tau:g}")
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
