"""Training-free, latency-constrained student search: scores, spaces, aging evolution."""

from edgekd._verbs import make_callable
from edgekd.search.api import SearchResult, search
from edgekd.search.scores import ScoreContext, get_score, list_scores, register_score
from edgekd.search.spaces import Space, list_spaces, make_space

__all__ = ["ScoreContext", "SearchResult", "Space", "get_score", "list_scores", "list_spaces", "make_space",
           "register_score", "search"]


make_callable(__name__, search)  # edgekd.search(...) runs the verb; see edgekd._verbs
