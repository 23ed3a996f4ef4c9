"""Spot-check draws (随机抽查) that an inspector can reproduce from the audit trail.

A draw ranks the candidate branch codes by SHA-256 of `seed:code` and takes the first `count`.
The seed, the candidates and the count are written to the trail (`spotcheck.drawn`), so anyone can
recompute the draw by hand or with `reproduce`, and see that nobody picked the branches.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

ALGORITHM = "sha256(seed + ':' + code) ascending, first `count`"


def draw(candidates: list[str], count: int, seed: str) -> list[str]:
    """The `count` candidates a seed selects, in draw order."""
    ranked = sorted(set(candidates), key=lambda code: hashlib.sha256(f"{seed}:{code}".encode()).hexdigest())
    return ranked[: max(0, count)]


def new_seed() -> str:
    """A fresh, unpredictable seed."""
    return secrets.token_hex(16)


def record(kind: str, candidates: list[str], count: int, seed: str) -> dict[str, Any]:
    """The audit payload of a draw: everything needed to recompute it."""
    return {
        "kind": kind,
        "seed": seed,
        "candidates": sorted(set(candidates)),
        "count": count,
        "algorithm": ALGORITHM,
        "drawn": draw(candidates, count, seed),
    }


def reproduce(payload: dict[str, Any]) -> bool:
    """Whether a recorded draw is what its seed and inputs give."""
    return draw(payload["candidates"], payload["count"], payload["seed"]) == payload["drawn"]
