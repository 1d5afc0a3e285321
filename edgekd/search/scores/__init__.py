"""Training-free scores of a candidate student: one registry, higher is better for every score.

A score is a function ``fn(ctx: ScoreContext, student: nn.Module) -> float``. The context carries
the one labelled batch, the teacher and whatever a score computes once per search (the teacher's
DisWOT matrices), so scoring many candidates costs one teacher backward in all.
"""

from __future__ import annotations

from edgekd.search.scores import cost as _cost  # noqa: F401  (registers flops, params)
from edgekd.search.scores import diswot as _diswot  # noqa: F401  (registers diswot*)
from edgekd.search.scores import proxies as _proxies  # noqa: F401  (registers nwot, synflow, ...)
from edgekd.search.scores.cost import count_flops, count_params
from edgekd.search.scores.registry import ScoreContext, ScoreFn, get_score, list_scores, register_score

# What the search ranks by when the caller names no score: the one that ranked the search ground truth
# best (bench/search_groundtruth.py --rescore, README "Student search"); DisWOT is kept as a named score.
DEFAULT_SCORE = "flops"

__all__ = ["DEFAULT_SCORE", "ScoreContext", "ScoreFn", "count_flops", "count_params", "get_score", "list_scores",
           "register_score"]
