"""The torch-free names and rules the configs check (ufm.choices) are the ones the computing modules use."""

import pytest
import torch

from ufm import choices
from ufm.choices import check_copies, check_figure_names, check_solver_n_w, count_list
from ufm.errors import FieldError


def test_the_registries_of_the_computing_modules_use_these_names():
    from ufm.batching import SCHEMES
    from ufm.deep.augment import AUGMENT
    from ufm.deep.model import HEADS
    from ufm.figures import FIGURES
    from ufm.imbalance import PROFILES
    from ufm.losses import LOSSES
    from ufm.solver import SOLVERS

    assert (SCHEMES, HEADS, PROFILES, SOLVERS) == (choices.SCHEMES, choices.HEADS, choices.PROFILES, choices.SOLVERS)
    assert tuple(AUGMENT) == choices.AUGMENTATIONS
    assert list(FIGURES) == list(choices.FIGURES)
    assert {n: f.description for n, f in FIGURES.items()} == choices.FIGURES
    assert list(LOSSES) == list(choices.LOSS_OPTIONS)
    assert LOSSES["scl"].uses_n_w and LOSSES["scl"].uses_anchor_convention
    assert LOSSES["class-averaging"].uses_n_w and not LOSSES["class-averaging"].uses_anchor_convention
    assert not LOSSES["limit"].uses_n_w and LOSSES["limit"].uses_anchor_convention
    assert not LOSSES["ce"].uses_n_w and not LOSSES["prop1"].uses_anchor_convention


@pytest.mark.parametrize("n_w", [0.5, (0.0, 0.5), [2.0, 0.25], torch.tensor([1.0, 0.5])])
def test_copies_below_one_are_refused_with_prototype_anchors_in_every_form(n_w):
    with pytest.raises(FieldError, match="must be 0 or >= 1"):
        check_copies(n_w, True)
    check_copies(n_w, False)  # a weight without prototype anchors


def test_copies_zero_and_from_one_pass():
    check_copies((0.0, 1.0, 100.0), True)
    check_copies(torch.tensor([0.0, 3.0]), True)


def test_solver_n_w_limit():
    check_solver_n_w(choices.MAX_SOLVER_N_W, True)
    check_solver_n_w(1e12, False)
    with pytest.raises(FieldError, match="beyond what the float64 solvers resolve"):
        check_solver_n_w(1e12, True)


def test_count_list_reads_counts_and_refuses_bad_text():
    assert count_list("50x2,5") == [50, 50, 5]
    assert count_list(" 3, 4 ") == [3, 4]
    for text, words in (("5", "at least 2 classes"), ("ax2", "cannot read"), ("0x3", "must be >= 1"),
                        ("5x2000000", "more than 1000000 classes")):
        with pytest.raises(FieldError, match=words):
            count_list(text)


def test_parse_counts_is_count_list_as_a_tensor():
    from ufm.imbalance import parse_counts

    assert parse_counts("4x2,1").tolist() == count_list("4x2,1")


def test_unknown_figure_names_are_refused():
    check_figure_names(["prop1-gaps"])
    with pytest.raises(FieldError, match="unknown figures"):
        check_figure_names(["prop1-gaps", "nope"])


def test_profile_rules_refuse_counts_that_do_not_exist_as_class_counts_does():
    from ufm.choices import check_profile
    from ufm.imbalance import class_counts

    for args, words in ((("step", 10, 3, 10.0), "n // R = 3 // 10 = 0"), (("long-tail", 5, 9, 10.0), "rarest class"),
                        (("step", 3, 50, 10.0, 0.2), "floor(rho k) = 0"), (("zipf", 5, 9, 2.0), "unknown imbalance")):
        with pytest.raises(FieldError, match=words.replace("(", r"\(").replace(")", r"\)")):
            check_profile(*args)
        with pytest.raises(FieldError, match=words.replace("(", r"\(").replace(")", r"\)")):
            class_counts(*args)
    check_profile("long-tail", 5, 10, 10.0)
    assert class_counts("long-tail", 5, 10, 10.0).tolist()[-1] == 1


def test_copies_search_options_are_refused_before_any_solve():
    from ufm.choices import check_copies_search

    check_copies_search(0.05, 1e4, 1e-3, "BM", True)
    for args, words in (((0.05, 1e4, 1e-3, "X", True), "--solver|solver"), ((-1, 1e4, 1e-3, "BM", True), "target"),
                        ((0.05, 0.5, 1e-3, "BM", True), "max_n_w"), ((0.05, 1e4, 2.0, "BM", True), "rel_tol")):
        with pytest.raises(FieldError, match=words):
            check_copies_search(*args)
    check_copies_search(0.05, 0.5, 1e-3, "BM", False)  # a weight below one copy without prototype anchors


def test_a_final_config_refuses_counts_that_do_not_exist_and_a_grid_base_may_hold_them():
    from dataclasses import replace

    from ufm.sim_config import SimConfig
    from ufm.spec import ProblemSpec

    base = SimConfig(n_major=5)  # the default ratio 10 leaves no minority samples: a grid over the ratio may fix it
    replace(base, ratio=2.0).check_counts()
    for config in (base, ProblemSpec(n_major=5)):
        with pytest.raises(FieldError, match=r"n // R = 5 // 10 = 0"):
            config.check_counts()
    SimConfig(counts="5,1").check_counts()  # explicit counts: checked when built
