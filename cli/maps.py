"""``ufm copies``: how many prototype copies bring the optimal G_M within a distance of G_*."""

from __future__ import annotations

import typer
from rich import box
from rich.table import Table

from ._common import console, print_json, user_errors
from ._config import with_config_options
from ufm.maps import minimal_copies
from ufm.spec import DesignConfig, ProblemSpec


@user_errors
@with_config_options(ProblemSpec, skip=("n_w",))
def copies_command(
    config: ProblemSpec,
    target_distance: float = typer.Option(0.05, help="wanted distance of the optimal G_M to G_*"),
    max_n_w: float = typer.Option(1e4, "--max-n-w", help="give up above this many copies"),
    tol: float = typer.Option(1e-3, help="relative tolerance of the answer"),
    solver: str = typer.Option("BM", help="BM (Burer-Monteiro, certified; smooth in n_w) or auto (interior point)"),
    as_json: bool = typer.Option(False, "--json", help="print the search as JSON"),
) -> None:
    """Smallest n_w (copies of each prototype; fractional allowed) whose optimal G_M is within
    --target-distance of G_*, by a monotone search over the certified solver."""
    n = config.class_counts()
    comp = config.compositions(n)
    g_star = config.g_star(n)
    tau, prototype_anchors = config.tau, config.prototype_anchors
    try:
        result = minimal_copies(comp.numpy(), tau, g_star, target_distance, prototype_anchors, max_n_w, tol,
                                solver=solver)
    except ValueError as err:  # the library names its arguments; say the flags
        msg = str(err)
        for arg, flag in (("target_distance", "--target-distance"), ("max_n_w", "--max-n-w"), ("rel_tol", "--tol")):
            msg = msg.replace(arg, flag)
        raise ValueError(msg) from None
    if as_json:
        print_json({"counts": n.tolist(), "batches": len(comp), "tau": tau, **result.to_dict()})
        return
    table = Table(title=f"search over n_w (target distance {target_distance:g})", box=box.SIMPLE, padding=(0, 1))
    for col in ("n_w", "distance", "reached", "status", "certified gap", "relative gap"):
        table.add_column(col, justify="right")
    for s in result.steps:
        table.add_row(f"{s.n_w:.6g}", f"{s.distance:.6f}", "yes" if s.distance <= target_distance else "no", s.status,
                      "-" if s.certified_gap is None else f"{s.certified_gap:.1e}",
                      "-" if s.relative_gap is None else f"{s.relative_gap:.1e}")
    console.print(f"class counts n = {n.tolist()}, {len(comp)} batch(es), tau {tau:g}, "
                  f"{'prototype anchors' if prototype_anchors else 'batch anchors only'}")
    console.print(table)
    if not result.monotone_on_path:
        console.print("[yellow]warning: the distance was not non-increasing along the search; the answer assumes "
                      "it is[/yellow]")
    if result.reached:
        console.print(f"n_w = {result.n_w:.6g} copies bring G_M within {target_distance:g} of G_* "
                      f"(distance {result.distance:.6f}; "
                      + ("n_w = 0 already does)" if result.lower is None else f"not reached at n_w = {result.lower:.6g})"))
    else:
        console.print(f"not reached up to n_w = {max_n_w:g}: distance {result.steps[-1].distance:.6f} there "
                      f"> {target_distance:g}")


@user_errors
@with_config_options(DesignConfig, skip=("batching", "batch_size", "seed"))
def design_prototypes_command(
    config: DesignConfig,
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON (with the designed G_w)"),
) -> None:
    """Prototype Gram G_w (majority, minority and across cosines) whose optimal G_M is closest to the target
    G_* (--geometry or --gram-file) at --n-w copies, full batch, against G_w = G_*."""
    from ufm.maps import best_block_prototypes

    n = config.class_counts()
    tau, n_w, prototype_anchors = config.tau, config.n_w, config.prototype_anchors
    out = best_block_prototypes(n.numpy(), tau, n_w, config.g_star(n), prototype_anchors, config.max_evals)
    if as_json:
        print_json(out)
        return
    a0, b0, c0 = out["g_star_cosines"]
    a, b, c = out["best_cosines"]
    console.print(f"class counts n = {n.tolist()}, tau {tau:g}, n_w {n_w:g}, "
                  f"{'prototype anchors' if prototype_anchors else 'batch anchors only'}, full batch, target G_* "
                  f"{config.gram_file or config.geometry}")
    table = Table(box=box.SIMPLE, padding=(0, 1))
    for col in ("prototype Gram", "majority cos", "minority cos", "across cos", "distance of optimal G_M to G_*"):
        table.add_column(col, justify="right")
    table.add_row("G_w = G_*", f"{a0:+.4f}", f"{b0:+.4f}", f"{c0:+.4f}", f"{out['distance_g_star']:.6f}")
    table.add_row("designed G_w", f"{a:+.4f}", f"{b:+.4f}", f"{c:+.4f}", f"{out['distance_best']:.2e}")
    console.print(table)
    console.print(f"{out['solves']} certified solves (best: {out['best_status']}, certified gap "
                  f"{out['best_certified_gap']:.1e}); Nelder-Mead {'converged' if out['converged'] else 'stopped at --max-evals'}")
