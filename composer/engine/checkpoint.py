"""A LoraHub search's checkpoint: what it has evaluated so far, to resume it after a stop.

A checkpoint holds results, never an optimiser: the screening rows done (each candidate's
loss alone, in screening order) and the search's evaluations (CE and weights, in the order
they were asked). It is plain JSON (`to_json`); nothing is pickled, so a checkpoint read
back can carry no code, and it may be stored anywhere (a job's database row).

Resuming (`compose(..., resume=...)`): screening skips the candidates it has rows for (they
are whole chunks, so the chunks left are the ones an uninterrupted run makes), and a fresh
optimiser with the same seed is asked again and told each recorded loss instead of
evaluating it. Where the optimiser is deterministic for a seed (most of nevergrad's, and
NGOpt's choices for small budgets), it asks the same points and the search goes on where
it stopped: the result is the one an uninterrupted run gives. One that draws from more
than the seed (NGOpt's CMA-based choices for large budgets: then two uninterrupted runs
differ as well) asks another point: it is evaluated next, and the recorded points are
told as points it did not ask (`spawn_child`), where the optimiser allows that. Either
way no evaluation is made twice and the best point found is kept.

A checkpoint only resumes the search it came from: its fingerprint covers every parameter
and the number of candidates; any other is ignored (the search starts over).
"""

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

VERSION = 1


class StaleCheckpoint(Exception):
    """The checkpoint does not describe these candidates (the search starts over)."""


def fingerprint(params, n: int) -> str:
    """What a checkpoint must have been made with to resume a search: `params`
    (a LoraHubParams) and the number of candidates."""
    canon = json.dumps({"params": asdict(params), "n": n, "version": VERSION}, sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def _num(x: float) -> float | str:
    """JSON has no NaN or infinities (PostgreSQL refuses them): those become strings."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def _float(v) -> float:
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"not a number: {v!r}")
    return float(v)


@dataclass
class Checkpoint:
    """The evaluations a search has made so far (see the module docstring)."""

    fingerprint: str
    total: int  # evaluations of the whole search (screening included)
    screened: list = field(default_factory=list)  # screening.Screened, in screening order
    told: list[tuple[float, list[float]]] = field(default_factory=list)  # (ce, weights)
    finished: bool = False  # every evaluation made: only the final choice is left

    @property
    def step(self) -> int:
        return len(self.screened) + len(self.told)

    def to_json(self) -> dict:
        return {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "total": self.total,
            "step": self.step,
            "finished": self.finished,
            "screened": [
                {**r.row(), "ce": _num(r.ce), "loss": _num(r.loss), "info": r.info}
                for r in self.screened
            ],
            "told": [[_num(ce), w] for ce, w in self.told],
        }

    @classmethod
    def from_json(cls, data, expected: str) -> "Checkpoint | None":
        """The checkpoint `data` holds if it was made with fingerprint `expected`, else None."""
        from composer.engine.screening import Screened

        if not isinstance(data, dict) or data.get("fingerprint") != expected:
            return None
        if data.get("version") != VERSION:
            return None
        try:
            screened = [
                Screened(
                    int(r["index"]),
                    str(r["name"]),
                    None if r["sha256"] is None else str(r["sha256"]),
                    _float(r["ce"]),
                    _float(r["loss"]),
                    dict(r["info"]),
                )
                for r in data["screened"]
            ]
            told = [(_float(ce), [_float(x) for x in w]) for ce, w in data["told"]]
            return cls(expected, int(data["total"]), screened, told, bool(data["finished"]))
        except (KeyError, TypeError, ValueError):
            return None
