"""A LoraHub search stopped, then resumed from its checkpoint, ends where an uninterrupted
search with the same seed ends, without making again the evaluations it had made."""

import json

import pytest

from composer.engine.lorahub import Cancelled, LoraHubParams, compose

PARAMS = {
    # screening one candidate per chunk, so a stop can fall between chunks
    "screen": {"mode": "screen", "budget": 14, "top_k": 3, "screen_batch": 1},
    "reference": {"mode": "reference", "budget": 12},
    "population": {"mode": "reference", "budget": 12, "population": 3},
}


class Counter:
    """The engine's callbacks: counts evaluations (steps), keeps the latest checkpoint's
    JSON (as a store would: through json) and stops the search after `stop_after` steps."""

    def __init__(self, stop_after=None):
        self.stop_after, self.steps, self.saved = stop_after, 0, None

    def on_step(self, info):
        self.steps = info.step

    def should_stop(self):
        return self.stop_after is not None and self.steps >= self.stop_after

    def on_checkpoint(self, ckpt):
        self.saved = json.loads(json.dumps(ckpt.to_json(), allow_nan=False))


def run(kit, examples, params, counter, resume=None):
    return compose(
        kit.model,
        kit.tok,
        kit.loaded(),
        examples,
        LoraHubParams(seed=3, **params),
        on_step=counter.on_step,
        should_stop=counter.should_stop,
        on_checkpoint=counter.on_checkpoint,
        resume=resume,
    )


@pytest.mark.parametrize("case", PARAMS)
@pytest.mark.parametrize("stop_after", [2, 7])  # screen mode: while screening, then searching
def test_resumed_search_ends_as_uninterrupted_one(t5, examples, case, stop_after):
    params = PARAMS[case]
    whole = run(t5, examples, params, Counter())

    first = Counter(stop_after)
    with pytest.raises(Cancelled):
        run(t5, examples, params, first)
    saved = first.saved
    pop = params.get("population", 1)  # a batch of candidates is evaluated whole
    stopped = -(-stop_after // pop) * pop
    assert saved["step"] == stopped and not saved["finished"]

    again = run(t5, examples, params, Counter(), resume=saved)
    # the evaluations made before the stop were taken from the checkpoint, not made again
    screened = min(stopped, len(t5.adapters)) if params["mode"] == "screen" else 0
    assert again.resumed == {
        "screened": screened,
        "searched": stopped - screened,
        "evaluated": params["budget"] - stopped,
    }
    # the same search: the same points asked, the same losses, the same result
    assert again.history == whole.history
    assert again.weights == whole.weights and again.loss == whole.loss
    assert again.best_weights == whole.best_weights
    assert whole.resumed is None


def test_a_checkpoint_of_another_search_is_not_resumed(t5, examples):
    params = PARAMS["reference"]
    first = Counter(5)
    with pytest.raises(Cancelled):
        run(t5, examples, params, first)
    other = run(t5, examples, {**params, "l1": 0.1}, Counter(), resume=first.saved)
    assert other.resumed is None and len(other.history) == params["budget"]


def test_a_finished_search_resumes_without_evaluating(t5, examples):
    """Killed after its search (while evaluating the result): nothing is searched again."""
    params = PARAMS["screen"]
    first = Counter()
    whole = run(t5, examples, params, first)
    assert first.saved["finished"] and first.saved["step"] == params["budget"]
    again = run(t5, examples, params, Counter(), resume=first.saved)
    assert again.resumed["evaluated"] == 0 and again.weights == whole.weights


def test_an_optimiser_that_asks_other_points_keeps_the_budget_and_the_best(t5, examples):
    """CMA (NGOpt's choice for large budgets) draws from more than the seed: resumed, it
    asks other points, yet no evaluation is made twice and the best point found is kept."""
    params = {"mode": "reference", "budget": 16, "optimizer": "CmaFmin2"}
    first = Counter(8)
    with pytest.raises(Cancelled):
        run(t5, examples, params, first)
    before = first.saved["told"]
    again = run(t5, examples, params, Counter(), resume=first.saved)
    assert again.resumed == {"screened": 0, "searched": 8, "evaluated": 8}
    assert [h["weights"] for h in again.history[:8]] == [w for _, w in before]
    assert len(again.history) == 16 and len({str(h["weights"]) for h in again.history}) == 16
    assert again.best_loss == min(h["loss"] for h in again.history)
