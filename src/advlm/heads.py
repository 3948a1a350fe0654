"""One small adapter per output kind: which output distributions count, and where, for consistency terms and
for per-example losses.

A consistency term (SMART's smoothness and Bregman terms) compares two outputs of one model on one batch. What
it compares depends on the head (docs/methods.md, "Heads"):

- `classification`: the class logits, one distribution per example;
- `regression`: the single output, by squared error;
- `multiple-choice`: the choice logits, one distribution per example, missing choices (all-padding rows of
  a batch whose examples have fewer choices) masked out;
- `token-classification`: one distribution per token, at the positions whose label is not -100 (padding,
  special tokens and later sub-words of a word do not count);
- `causal-lm`: the next-token distributions at the positions whose shifted label is not -100 (the response
  of prompt/response data), shifted as the loss is;
- `question-answering`: the start and the end distributions over the context's positions.

The divergence is averaged over the positions that count, so a long sequence does not weigh more than the
loss it regularizes; for QA the start and end terms are averaged, as the model's own loss is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

CLASSIFICATION = "classification"
REGRESSION = "regression"
MULTIPLE_CHOICE = "multiple-choice"
TOKEN_CLASSIFICATION = "token-classification"
QUESTION_ANSWERING = "question-answering"
CAUSAL_LM = "causal-lm"
HEADS = (CLASSIFICATION, REGRESSION, MULTIPLE_CHOICE, TOKEN_CLASSIFICATION, QUESTION_ANSWERING, CAUSAL_LM)

# by the end of the model's class name (transformers' naming for its task heads)
_CLASS_SUFFIXES = (
    ("ForQuestionAnswering", QUESTION_ANSWERING),
    ("ForCausalLM", CAUSAL_LM),
    ("LMHeadModel", CAUSAL_LM),
    ("ForTokenClassification", TOKEN_CLASSIFICATION),
    ("ForMultipleChoice", MULTIPLE_CHOICE),
)
MASKED = -1e9  # the logit of a position that does not count: exp() is exactly 0 in fp32, differences stay finite
SPECIAL_CONFIG_KEYS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id")


def head_of_class(class_name: str) -> str | None:
    """The head kind of a transformers class name, or None for a bare encoder or decoder (`BertModel`)."""
    for suffix, kind in _CLASS_SUFFIXES:
        if class_name.endswith(suffix):
            return kind
    return CLASSIFICATION if class_name.endswith("ForSequenceClassification") else None


def head_of(model: nn.Module) -> str:
    """The head kind of a transformers model, from its class name; sequence classification otherwise."""
    from advlm.embeddings import unwrap

    bare = unwrap(model)
    if hasattr(bare, "get_base_model"):  # a peft model: the head is the base model's
        bare = bare.get_base_model()
    kind = head_of_class(type(bare).__name__)
    if kind not in (None, CLASSIFICATION):
        return kind
    config = getattr(bare, "config", None)
    regression = getattr(config, "problem_type", None) == "regression" or getattr(config, "num_labels", 2) == 1
    return REGRESSION if regression else CLASSIFICATION


def special_ids(model: nn.Module, extra: Iterable[int] = ()) -> tuple[int, ...]:
    """The ids a model's config names as special (pad, bos, eos, sep, cls) together with `extra` (a
    tokenizer's `all_special_ids`), sorted."""
    from advlm.embeddings import unwrap

    config = getattr(unwrap(model), "config", None)
    ids = {getattr(config, key, None) for key in SPECIAL_CONFIG_KEYS} | set(extra)
    return tuple(sorted(i for i in ids if isinstance(i, int) and i >= 0))


@functools.lru_cache(maxsize=32)
def id_tensor(ids: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """`ids` as a tensor on `device`, made once (not copied to the device every step)."""
    return torch.tensor(ids, dtype=torch.long, device=device)


@dataclass
class Distributions:
    """Rows of logits (N x K) and the weight of each row (N; 1.0 where it counts, None when all do)."""

    logits: torch.Tensor
    weight: torch.Tensor | None = None


def detached(outputs) -> dict:
    """The tensors of a model output, detached (a target that a divergence must not back-propagate into)."""
    return {k: v.detach() if torch.is_tensor(v) else v for k, v in outputs.items()}


def _logits(outputs) -> torch.Tensor:
    return outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]


def present_choices(batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """B x C, True for the choices that exist (a missing choice is a row of padding), or None without a mask."""
    mask = batch.get("attention_mask")
    return None if mask is None or mask.dim() < 3 else mask.bool().any(-1)


def context_mask(batch: Mapping[str, torch.Tensor], specials: tuple[int, ...] = ()) -> torch.Tensor:
    """B x T, True at the context tokens of question/context pairs (the second text segment): where
    `token_type_ids` is 1 if the batch has them, else the last run of non-special tokens. No host sync."""
    ids = batch["input_ids"]
    real = batch["attention_mask"].bool() if "attention_mask" in batch else torch.ones_like(ids, dtype=torch.bool)
    special = torch.isin(ids, id_tensor(specials, ids.device)) if specials else torch.zeros_like(real)
    text = real & ~special
    if "token_type_ids" in batch:
        return text & (batch["token_type_ids"] == 1)
    starts = special & ~F.pad(special, (1, 0), value=False)[..., :-1]  # first token of each run of specials
    segment = starts.long().cumsum(-1)
    last = (segment * text).amax(-1, keepdim=True)
    return text & (segment == last)


def distributions(
    head: str, outputs, batch: Mapping[str, torch.Tensor], specials: tuple[int, ...] = ()
) -> list[Distributions]:
    """The output distributions that a consistency term compares for `head`, with their weights."""
    if head == QUESTION_ANSWERING:
        context = context_mask(batch, specials)
        return [Distributions(outputs[k].masked_fill(~context, MASKED)) for k in ("start_logits", "end_logits")]
    logits = _logits(outputs)  # in its own dtype: the divergence computes in fp32 chunk by chunk
    if head in (CLASSIFICATION, REGRESSION):
        return [Distributions(logits)]
    if head == MULTIPLE_CHOICE:
        present = present_choices(batch)
        return [Distributions(logits if present is None else logits.masked_fill(~present, MASKED))]
    labels = batch.get("labels")
    counts = labels != -100 if labels is not None else _real(batch)
    if head == CAUSAL_LM:  # position t predicts token t + 1: shift the weights (a view of the logits, no copy)
        counts = F.pad(counts[..., 1:], (0, 1), value=False)
    return [Distributions(logits.reshape(-1, logits.size(-1)), counts.reshape(-1).float())]


def _real(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    mask = batch.get("attention_mask")
    return torch.ones_like(batch["input_ids"], dtype=torch.bool) if mask is None else mask.bool()


# Rows per chunk of a divergence: 4M fp32 elements (16 MB). glibc serves blocks above its mmap threshold (at
# most 32 MB) with fresh pages from the kernel, so a vocabulary-wide temporary (125 MB for 1,024 positions of a
# 30k vocabulary) is page-faulted in anew at every use; chunks below it are reused. On a GPU chunks also keep
# the temporaries at a chunk's size instead of the vocabulary's times the positions.
CHUNK_ELEMENTS = 1 << 22


def symmetric_kl_rows(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per row, KL(p_target || p) + KL(p || p_target), each direction with its target side detached (mt-dnn's
    SymKlCriterion), in fp32. The plain reference; `symmetric_kl_mean` is the one the methods use."""
    log_p, log_q = F.log_softmax(logits.float(), -1), F.log_softmax(target.float(), -1)
    p, q = log_p.exp(), log_q.exp()
    return (q.detach() * (log_q.detach() - log_p)).sum(-1) + (p.detach() * (log_p.detach() - log_q)).sum(-1)


def _chunks(rows: torch.Tensor | None, n_rows: int, width: int) -> list[slice]:
    """Slices of at most CHUNK_ELEMENTS elements over all rows, or over the runs of consecutive `rows` (sorted
    row indices; a causal LM's responses and a tagger's labelled tokens come in runs), so that a chunk is a
    view, never a copy."""
    size = max(1, CHUNK_ELEMENTS // max(width, 1))
    if rows is None:
        runs = [(0, n_rows)] if n_rows else []
    else:
        breaks = ((rows[1:] != rows[:-1] + 1).nonzero().squeeze(-1) + 1).tolist()
        bounds = rows.tolist()
        starts = [0, *breaks]
        ends = [*breaks, len(bounds)]
        runs = [(bounds[s], bounds[e - 1] + 1) for s, e in zip(starts, ends) if e > s]
    return [slice(i, min(i + size, end)) for start, end in runs for i in range(start, end, size)]


def _diff(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p_a - p_b and a - b for one chunk of rows, in fp32."""
    a, b = a.float(), b.float()
    return torch.softmax(a, -1).sub_(torch.softmax(b, -1)), a - b


class _SymmetricKLMean(torch.autograd.Function):
    """sum_rows w_row (KL(p_a || p_b) + KL(p_b || p_a)), where a row's symmetric KL is (p_a - p_b) . (a - b)
    (the log-sum-exps cancel, as p_a - p_b sums to 0), with the gradients of mt-dnn's SymKlCriterion, where each
    direction detaches its target side: w g (p_a - p_b) for a and its negative for b.

    Computed chunk by chunk over the rows that count (`rows`; None: all), and recomputed in backward rather than
    saved: for a causal LM's vocabulary at every position, one vocabulary-wide temporary costs as much as a
    softmax, and the rows that do not count (a prompt, padding) are not computed at all. Backward allocates
    the one gradient it returns (and its negative when b needs one)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor, rows: torch.Tensor | None):
        total = torch.zeros((), dtype=torch.float32, device=a.device)
        ctx.chunks = _chunks(rows, a.size(0), a.size(-1))
        for chunk in ctx.chunks:
            diff, delta = _diff(a[chunk], b[chunk])
            total += torch.linalg.vecdot(diff, delta) @ weight[chunk]
        ctx.save_for_backward(a, b, weight)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b, weight = ctx.saved_tensors
        grad_a = torch.zeros_like(a)
        for chunk in ctx.chunks:
            diff, _ = _diff(a[chunk], b[chunk])
            grad_a[chunk] = diff.mul_((grad * weight[chunk]).unsqueeze(-1))
        need_a, need_b = ctx.needs_input_grad[:2]
        return grad_a if need_a else None, -grad_a if need_b else None, None, None


def symmetric_kl_mean(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over rows (N x K logits) of the symmetric KL between `logits` and `target`, weighted by
    `weight` (N, 1.0 where a row counts; None: all do) over the rows that count (0 when none does); each
    direction detaches its target side (mt-dnn's SymKlCriterion). Fp32 arithmetic for any input dtype.

    On the CPU only the rows that count are computed (finding them is free there); on an accelerator every row
    is, with weight 0 where it does not count, so that no step waits on the device for an index."""
    n = logits.size(0)
    if weight is None:
        weight = torch.full((n,), 1.0 / max(n, 1), device=logits.device)
        rows = None
    else:
        weight = weight.float()
        weight = weight / weight.sum().clamp_min(1.0)
        rows = weight.nonzero().squeeze(-1) if logits.device.type == "cpu" else None
    return _SymmetricKLMean.apply(logits, target, weight, rows)


def consistency(
    head: str, outputs, target, batch: Mapping[str, torch.Tensor], specials: tuple[int, ...] = ()
) -> torch.Tensor:
    """SMART's l_s between `outputs` and `target` (detached where the divergence says): squared error for
    regression, else the symmetric KL averaged over the positions that count, averaged over the head's
    distributions."""
    if head == REGRESSION:
        out, tgt = _logits(outputs).float(), _logits(target).float()
        return F.mse_loss(out, tgt.detach())
    terms = [
        symmetric_kl_mean(a.logits, b.logits, a.weight)
        for a, b in zip(distributions(head, outputs, batch, specials), distributions(head, target, batch, specials))
    ]
    return sum(terms) / len(terms)


def example_losses(head: str, outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Each example's loss (B,), fp32: cross-entropy for classes, the mean over the positions that count for
    token-level heads, the mean of start and end for QA, squared error for regression."""
    if head == QUESTION_ANSWERING:
        start = F.cross_entropy(outputs["start_logits"].float(), batch["start_positions"], reduction="none")
        end = F.cross_entropy(outputs["end_logits"].float(), batch["end_positions"], reduction="none")
        return (start + end) / 2
    logits, labels = _logits(outputs).float(), batch["labels"]
    if head == REGRESSION:
        return (logits.view(-1) - labels.float().view(-1)) ** 2
    if head == MULTIPLE_CHOICE:
        present = present_choices(batch)
        logits = logits if present is None else logits.masked_fill(~present, MASKED)
    if head in (CLASSIFICATION, MULTIPLE_CHOICE):
        return F.cross_entropy(logits, labels, reduction="none")
    if head == CAUSAL_LM:
        logits, labels = logits[..., :-1, :], labels[..., 1:]
    per_token = F.cross_entropy(logits.transpose(1, -1), labels, reduction="none", ignore_index=-100)
    counts = (labels != -100).float()
    return (per_token * counts).sum(-1) / counts.sum(-1).clamp_min(1.0)


def example_correct(head: str, outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """Whether each example is predicted correctly (B,): the class or choice; every labelled token; the exact
    start and end. None for heads without such a notion (regression, causal LM)."""
    if head in (REGRESSION, CAUSAL_LM):
        return None
    if head == QUESTION_ANSWERING:
        start = outputs["start_logits"].argmax(-1) == batch["start_positions"]
        return start & (outputs["end_logits"].argmax(-1) == batch["end_positions"])
    logits, labels = _logits(outputs), batch["labels"]
    if head == MULTIPLE_CHOICE:
        present = present_choices(batch)
        logits = logits if present is None else logits.masked_fill(~present, MASKED)
    predicted = logits.argmax(-1)
    if head == TOKEN_CLASSIFICATION:
        return ((predicted == labels) | (labels == -100)).all(-1)
    return predicted == labels
