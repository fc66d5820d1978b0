"""G-Eval style scores: the expected value over the score tokens 0..10 of a next-token distribution."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch

SCORES = tuple(str(i) for i in range(11))
_MARKERS = ("Ġ", "▁", " ")


@dataclass(frozen=True)
class ScoreTokens:
    """The token ids of the score strings "0".."10" in one tokenizer.

    ``ids[v]`` are the single tokens that decode to ``v`` (with or without a leading space). When "10" has no
    single token (tokenizers that split digits), ``ten_split`` is True: "10" is "1" then "0", and the mass of
    "1" is split between 1 and 10 by the probability of ``zero_ids`` after "1" (a second forward pass).
    """

    ids: dict[int, tuple[int, ...]]
    zero_ids: tuple[int, ...]  # "0" exactly (no space): the second digit of "10"

    @property
    def ten_split(self) -> bool:
        return not self.ids.get(10)

    @property
    def all_ids(self) -> list[int]:
        return [i for v in sorted(self.ids) for i in self.ids[v]]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> ScoreTokens:
        found: dict[int, set[int]] = {v: set() for v in range(11)}
        zero: set[int] = set()
        for token, tid in tokenizer.get_vocab().items():
            bare = token
            while bare[:1] in _MARKERS and bare:
                bare = bare[1:]
            if bare not in SCORES:
                continue
            text = tokenizer.decode([tid])
            if text.strip() != bare:
                continue
            found[int(bare)].add(tid)
            if text == "0":
                zero.add(tid)
        missing = [v for v in range(10) if not found[v]]
        if missing:
            raise ValueError(f"tokenizer has no single token for the score(s) {missing}; cannot read a score")
        if not found[10] and not zero:
            raise ValueError("tokenizer has neither a '10' token nor a bare '0' token to continue '1' with")
        return cls({v: tuple(sorted(s)) for v, s in found.items() if s}, tuple(sorted(zero)))


def score_distribution(logits: torch.Tensor, tokens: ScoreTokens, p_ten_given_one: torch.Tensor | None = None):
    """P(score = v) for v in 0..10, shape [B, 11]: softmax restricted to the score tokens, summed per value.

    With ``tokens.ten_split``, ``p_ten_given_one`` [B] moves that share of the mass of "1" to 10.
    """
    logits = logits.float()
    ids = tokens.all_ids
    probs = torch.softmax(logits[:, ids], dim=-1)
    dist = torch.zeros(logits.shape[0], 11, dtype=torch.float32, device=logits.device)
    col = 0
    for v in sorted(tokens.ids):
        n = len(tokens.ids[v])
        dist[:, v] = probs[:, col : col + n].sum(-1)
        col += n
    if tokens.ten_split and p_ten_given_one is not None:
        q = p_ten_given_one.float().clamp(0.0, 1.0)
        dist[:, 10] = dist[:, 1] * q
        dist[:, 1] = dist[:, 1] * (1.0 - q)
    return dist


def expected_score(dist: torch.Tensor) -> torch.Tensor:
    """Sum over v of v * P(v), shape [B]."""
    return (dist * torch.arange(11, dtype=dist.dtype, device=dist.device)).sum(-1)


def score_mass(logits: torch.Tensor, tokens: ScoreTokens) -> torch.Tensor:
    """The share of the full next-token probability held by the score tokens, shape [B]."""
    return torch.softmax(logits.float(), dim=-1)[:, tokens.all_ids].sum(-1)


@dataclass
class FailureStats:
    """Counts of scored and failed candidates, by failure kind (thread-safe)."""

    scored: int = 0
    failed: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, value: Any) -> None:
        with self._lock:
            if isinstance(value, BaseException):
                self.failed[getattr(value, "kind", type(value).__name__)] += 1
            else:
                self.scored += 1

    @property
    def total(self) -> int:
        return self.scored + sum(self.failed.values())

    @property
    def failure_rate(self) -> float:
        return sum(self.failed.values()) / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"scored": self.scored, "failed": dict(self.failed), "failure_rate": self.failure_rate}
