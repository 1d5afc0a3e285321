"""DisWOT (Dong et al., CVPR 2023, arXiv 2303.15678): distillation-aware scores without training.

Teacher and candidate are probed at initialization with one labelled batch and one cross-entropy
backward each; gradients are taken with ``torch.autograd.grad`` for the classifier weight only, so
nothing accumulates in ``.grad`` across candidates (the reference code summed the teacher's gradient
over every candidate it scored).

- Semantic distance M_s, from G (K classes × C channels), the gradient of the final classifier
  weight. ``channel`` mode (the paper; needs equal C): per class the C×C matrix g_k g_kᵀ, rows
  L2-normalized; mean over classes of the squared Frobenius distance, divided by C. ``class`` mode
  (used when C differs): the K×K class-relation matrix G Gᵀ, rows L2-normalized, squared Frobenius
  distance divided by K. Both are a mean over rows of a squared distance between unit rows, so they
  share a scale in [0, 4]; ``class`` mode is invariant to any orthogonal change of the channel basis
  (so to channel permutations), which is what makes it meaningful across widths. Scores use
  ``class`` mode by default (``ScoreContext.semantic_mode``) so that all candidates of a search,
  whatever their width, are compared on the same scale.
- Relation distance M_r: the B×B Gram matrix of the flattened final feature map (the input of the
  last global pooling; the classifier input when there is none), rows L2-normalized; squared Frobenius distance divided by B².
- score = −(M_s + M_r); ``diswot_semantic`` = −M_s and ``diswot_relation`` = −M_r. Higher is better,
  as for every score: the search keeps the maximum.

The normalizations are the reference code's (M_s a mean over rows, M_r divided by B², so M_r ≤ 4/B);
post-ReLU features share a large positive mean, so M_r is far smaller than M_s (10⁻⁴–10⁻³ against
10⁻²–1 on bench/search.py's Fashion-MNIST archs) and the sum ranks candidates almost as M_s does.
M_s moves with the draw of the inits about as much as it differs between candidates: there, the
teacher's own architecture, re-drawn as a candidate, ranked anywhere from 1st to 20th of 25
(bench/search_diswot_probe.py).

The batch must hold several classes: at initialization the softmax is near uniform, so row k of G is
about (batch mean feature)/K − (share of class k) × (class-k mean feature); with one class every row
is nearly a multiple of the batch mean and M_s compares noise (raised as an error).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.errors import ConfigError
from edgekd.search.scores.registry import ScoreContext, register_score


def gaussian_init(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialize in place: conv weights N(0, 1) (BatchNorm rescales), linear N(0, 0.01), biases 0.

    The reference code draws the classifier from N(0, 1) too; 0.01 keeps the initial softmax near
    uniform, so G is a function of the features (with N(0, 1) it also carries a random classifier's
    saturated arg-max).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.01)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.reset_running_stats()
            else:
                continue
            if getattr(m, "bias", None) is not None and not isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.bias.zero_()
    return model


def classifier(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` of a model: its weight gradient gives M_s, its input gives M_r."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(model).__name__} has no nn.Linear classifier; DisWOT needs one")
    return linears[-1]


def feature_module(model: nn.Module) -> nn.Module:
    """Where the final features enter: the last global pooling if any (the final feature map, before
    averaging throws away its spatial layout), else the classifier."""
    pools = [m for m in model.modules() if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))]
    return pools[-1] if pools else classifier(model)


def probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train_mode: bool = True,
          features_at: nn.Module | None = None):
    """One forward + CE backward: (classifier-weight gradient K×C, final features B×D).

    The features are the input of ``features_at`` (default: :func:`feature_module`).
    """
    fc = classifier(model)
    captured = {}

    def keep_input(module, inputs, output):  # returns None: a hook's return value would replace the output
        captured["f"] = inputs[0]

    handle = (features_at or feature_module(model)).register_forward_hook(keep_input)
    model.train(train_mode)
    try:
        logits = model(x)
    finally:
        handle.remove()
    grad, = torch.autograd.grad(F.cross_entropy(logits, y), fc.weight)
    return grad.detach(), captured["f"].detach().flatten(1)


def _rows(m: torch.Tensor) -> torch.Tensor:
    return F.normalize(m, p=2, dim=-1, eps=1e-12)


def semantic_distance(g_t: torch.Tensor, g_s: torch.Tensor, mode: str = "auto") -> float:
    """M_s between classifier-weight gradients (K × C_t and K × C_s); see the module docstring."""
    if g_t.shape[0] != g_s.shape[0]:
        raise ConfigError(f"teacher has {g_t.shape[0]} classes but the student {g_s.shape[0]}")
    if mode == "auto":
        mode = "channel" if g_t.shape == g_s.shape else "class"
    g_t, g_s = g_t.double(), g_s.double()
    if mode == "channel":
        if g_t.shape != g_s.shape:
            raise ConfigError(f"channel-mode M_s needs equal classifier widths, got {g_t.shape[1]} and "
                              f"{g_s.shape[1]}; use mode='class'")
        a_t = _rows(g_t[:, :, None] * g_t[:, None, :])
        a_s = _rows(g_s[:, :, None] * g_s[:, None, :])
        return float(((a_t - a_s) ** 2).sum(dim=(1, 2)).mean() / g_t.shape[1])
    if mode == "class":
        r_t, r_s = _rows(g_t @ g_t.T), _rows(g_s @ g_s.T)
        return float(((r_t - r_s) ** 2).sum() / g_t.shape[0])
    raise ConfigError(f"unknown M_s mode {mode!r}; valid: auto, channel, class")


def relation_distance(f_t: torch.Tensor, f_s: torch.Tensor) -> float:
    """M_r between B × * feature batches: row-normalized B×B Gram matrices, ‖·‖²_F / B²."""
    f_t, f_s = f_t.flatten(1).double(), f_s.flatten(1).double()
    if f_t.shape[0] != f_s.shape[0]:
        raise ConfigError("teacher and student features come from batches of different sizes")
    b = f_t.shape[0]
    return float(((_rows(f_t @ f_t.T) - _rows(f_s @ f_s.T)) ** 2).sum() / b**2)


def _teacher_probe(ctx: ScoreContext):
    if "diswot_teacher" not in ctx.cache:
        if ctx.teacher is None:
            raise ConfigError("DisWOT scores need a teacher")
        if ctx.teacher_init not in ("gaussian", "trained"):
            raise ConfigError(f"teacher_init must be 'gaussian' or 'trained', got {ctx.teacher_init!r}")
        classes = ctx.y.unique()
        if classes.numel() < 2:
            raise ConfigError(f"DisWOT needs a batch with several classes, got {len(ctx.y)} samples all of class "
                              f"{int(classes[0])}; draw a shuffled batch (a class-sorted dataset's first rows "
                              "hold one class)")
        teacher = copy.deepcopy(ctx.teacher)  # never touch the caller's weights, BN stats or grads
        teacher.requires_grad_(True)
        gaussian = ctx.teacher_init == "gaussian"
        if gaussian:
            gaussian_init(teacher, ctx.seed)
        ctx.cache["diswot_teacher"] = probe(teacher, ctx.x, ctx.y, train_mode=gaussian)
    return ctx.cache["diswot_teacher"]


def diswot_parts(ctx: ScoreContext, student: nn.Module, mode: str | None = None) -> tuple[float, float]:
    """(M_s, M_r) of a candidate against the context's teacher; the candidate is probed at init.

    ``mode`` defaults to ``ctx.semantic_mode`` (``"class"``): within a search the candidates' widths
    vary, and mixing the channel form (for the few whose width equals the teacher's) with the class
    form would rank them on two different scales.
    """
    g_t, f_t = _teacher_probe(ctx)
    candidate = gaussian_init(copy.deepcopy(student), ctx.seed + 1).requires_grad_(True)
    g_s, f_s = probe(candidate, ctx.x, ctx.y, train_mode=True)
    return semantic_distance(g_t, g_s, mode or ctx.semantic_mode), relation_distance(f_t, f_s)


@register_score("diswot")
def diswot(ctx: ScoreContext, student: nn.Module) -> float:
    m_s, m_r = diswot_parts(ctx, student)
    return -(m_s + m_r)


@register_score("diswot_semantic")
def diswot_semantic(ctx: ScoreContext, student: nn.Module) -> float:
    return -diswot_parts(ctx, student)[0]


@register_score("diswot_relation")
def diswot_relation(ctx: ScoreContext, student: nn.Module) -> float:
    return -diswot_parts(ctx, student)[1]
