"""Training-free, latency-constrained student search: scores, spaces, aging evolution."""

from edgekd.search.api import SearchResult, search
from edgekd.search.scores import ScoreContext, get_score, list_scores, register_score
from edgekd.search.spaces import Space, list_spaces, make_space

__all__ = ["ScoreContext", "SearchResult", "Space", "get_score", "list_scores", "list_spaces", "make_space",
           "register_score", "search"]


class _CallableModule(type(__import__("sys"))):
    """``edgekd.search`` is both this package and the verb: importing a submodule (``edgekd.search.scores``)
    rebinds the package attribute ``edgekd.search`` to the module, so the module itself must be callable."""

    def __call__(self, *args, **kwargs) -> SearchResult:
        return search(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
