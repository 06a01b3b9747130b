"""The collapse banner: red on any evidence of collapse, green only when every check passed."""

import torch

from openjepa.report.collapse import collapse_banner, neighbour_check, rankme_check


def _tables(trained, rand, name="eval.json"):
    rows = [{"name": "ijepa (target encoder)", "rankme": trained}, {"name": "raw pixels", "rankme": 300.0}]
    if rand is not None:
        rows.append({"name": "random-init encoder", "rankme": rand})
    return [(name, {"rows": rows})]


def test_rankme_at_or_below_random_init_is_collapse():
    assert rankme_check(_tables(3.0, 3.0))[0] is True  # "at or below"
    assert rankme_check(_tables(2.9, 3.0))[0] is True
    assert rankme_check(_tables(3.1, 3.0))[0] is False
    assert rankme_check(_tables(3.1, None)) is None  # no random-init row: no verdict from RankMe
    # The newest table holding both rows decides (newest first, as probe_tables lists them).
    newest = _tables(1.0, None, "eval_step00000009_target_knn.json") + _tables(9.0, 3.0)
    assert rankme_check(newest) == (False, "RankMe 9.0 above the random-init encoder's 3.0 (eval.json)")


def test_neighbour_similarities_all_near_one_is_collapse():
    assert neighbour_check(torch.full((6, 6), 0.9995))[0] is True
    assert neighbour_check(torch.tensor([[0.9995, 0.999], [1.0, 1.0]]))[0] is True  # the threshold counts
    sims = torch.tensor([[0.9999, 0.9989], [1.0, 1.0]])
    assert neighbour_check(sims) == (False, "nearest-neighbour cosine similarities down to 0.999")
    assert neighbour_check(None) is None and neighbour_check(torch.empty(0, 6)) is None


def test_banner_never_green_over_collapsed_features():
    quiet = {"collapse_warning": None}
    healthy_sims = torch.tensor([[0.8, 0.7]])
    # The monitor said nothing, but RankMe or the neighbours say collapsed: red, and no "no collapse".
    for tables, sims in ((_tables(2.0, 5.0), healthy_sims), (_tables(9.0, 5.0), torch.ones(6, 6))):
        html = collapse_banner(quiet, tables, sims)
        assert 'class="alert bad"' in html and "Looks collapsed" in html and "No collapse" not in html
    both = collapse_banner({"collapse_warning": "spread fell to 0.01"}, _tables(2.0, 5.0), torch.ones(2, 2))
    assert "RankMe of the trained encoder (2.0)" in both and "every nearest-neighbour cosine similarity" in both
    assert "The training monitor also warned: spread fell to 0.01" in both
    monitor_only = collapse_banner({"collapse_warning": "spread fell"}, _tables(9.0, 5.0), healthy_sims)
    assert monitor_only == '<div class="alert bad">Collapse warning: spread fell</div>'
    green = collapse_banner(quiet, _tables(9.0, 5.0), healthy_sims)
    assert green == ('<div class="alert good">No collapse detected: the training monitor raised no warning; '
                     "RankMe 9.0 above the random-init encoder&#x27;s 5.0 (eval.json); nearest-neighbour cosine "
                     "similarities down to 0.700.</div>")
    assert collapse_banner(None, _tables(9.0, 5.0), healthy_sims) == ""  # no monitor result: no green claim
    assert "Looks collapsed" in collapse_banner(None, _tables(2.0, 5.0), None)
