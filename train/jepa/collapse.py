"""Collapse watch: is the target encoder still producing spread-out, high-rank features?

Two signals on a sample of the target encoder's image embeddings (mean of its output tokens):

* ``std_ratio``: the mean per-dimension standard deviation of the L2-normalised embeddings,
  times ``sqrt(D)``. About 1 for embeddings spread over all directions, 0 when every image
  maps to the same point (the indicator of Chen & He 2021, SimSiam Sec. 4.1).
* ``rankme``: the effective rank of Garrido et al. 2023 (``train.jepa.probes.rankme``).

A warning is raised when either falls under a fraction (``min_std_ratio``, ``min_rank_ratio``)
of the best value the run has seen. Relative, because where they start depends on the
network: a small ViT's mean-pooled tokens share a large common direction at initialisation
(the tiny config starts at a std ratio of about 0.09), so an absolute threshold warned on
every epoch of healthy runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from train.jepa.probes import rankme


def std_ratio(embeddings: torch.Tensor) -> float:
    z = F.normalize(embeddings.double(), dim=1)
    return float(z.std(0).mean() * math.sqrt(z.size(1)))


@dataclass
class CollapseWatch:
    min_std_ratio: float
    min_rank_ratio: float
    best_std_ratio: float = 0.0
    best_rank: float = 0.0
    history: list[dict] = field(default_factory=list)

    def check(self, embeddings: torch.Tensor) -> tuple[dict, str | None]:
        """Measure, remember, and return ``(stats, warning or None)``."""
        stats = {"feature_std_ratio": std_ratio(embeddings), "rankme": rankme(embeddings)}
        self.best_std_ratio = max(self.best_std_ratio, stats["feature_std_ratio"])
        self.best_rank = max(self.best_rank, stats["rankme"])
        self.history.append(stats)
        problems = []
        if stats["feature_std_ratio"] < self.min_std_ratio * self.best_std_ratio:
            problems.append(
                f"feature std ratio {stats['feature_std_ratio']:.3f} < {self.min_std_ratio} "
                f"x best {self.best_std_ratio:.3f}"
            )
        if stats["rankme"] < self.min_rank_ratio * self.best_rank:
            problems.append(
                f"RankMe {stats['rankme']:.1f} < {self.min_rank_ratio} x best {self.best_rank:.1f}"
            )
        if not problems:
            return stats, None
        return stats, "possible representation collapse: " + "; ".join(problems)

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])
        self.best_std_ratio = max((h["feature_std_ratio"] for h in self.history), default=0.0)
        self.best_rank = max((h["rankme"] for h in self.history), default=0.0)
