"""Evaluation on held-out examples: token cross-entropy and exact match by greedy generation.

Exact match compares the generated text and the expected output after stripping surrounding
whitespace. Generation stops at EOS or after `max_new_tokens` (default: the longest expected
output in tokens + 2, enough to tell whether the output ends where it should).
"""

from collections.abc import Sequence

import torch

from composer.engine.examples import Example, causal_prompt_ids
from composer.engine.lorahub import Scorer


def example_loss(model, tok, examples: Sequence[Example], *, separator="", batch_size=16) -> float:
    """Mean token cross-entropy over every output token (the "token" normalisation)."""
    scorer = Scorer(model, tok, examples, separator=separator, batch_size=batch_size)
    return float(scorer.losses(1, norm="token")[0])


@torch.inference_mode()
def generate(
    model,
    tok,
    inputs: Sequence[str],
    *,
    separator: str = "",
    max_new_tokens: int = 32,
    batch_size: int = 16,
) -> list[str]:
    """Greedy completions (decoded, special tokens dropped) for each input; a generated NUL
    character (byte 0, which a byte-level model can emit) comes back as "␀" (U+2400), as
    text stores such as PostgreSQL refuse NUL."""
    causal = not model.config.is_encoder_decoder
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    outputs: list[str] = []
    for i in range(0, len(inputs), batch_size):
        chunk = list(inputs[i : i + batch_size])
        if causal:  # left-padded prompts so that every row continues from its last token
            rows = [causal_prompt_ids(tok, s, separator) for s in chunk]
            width = max(map(len, rows))
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        else:
            enc = tok(chunk, padding=True, return_tensors="pt")
            ids, mask = enc.input_ids, enc.attention_mask
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad,
            eos_token_id=tok.eos_token_id,
        )
        if causal:
            out = out[:, ids.shape[1] :]
        texts = tok.batch_decode(out, skip_special_tokens=True)
        outputs.extend(t.replace("\x00", "\N{SYMBOL FOR NULL}") for t in texts)
    return outputs


def evaluate_model(
    model,
    tok,
    examples: Sequence[Example],
    *,
    separator: str = "",
    max_new_tokens: int | None = None,
    batch_size: int = 16,
    keep_predictions: int = 20,
) -> dict:
    """{"n", "loss", "exact_match", "predictions": first `keep_predictions` rows}."""
    if max_new_tokens is None:
        max_new_tokens = max(
            len(tok(ex.output, add_special_tokens=False).input_ids) for ex in examples
        )
        max_new_tokens += 2
    preds = generate(
        model,
        tok,
        [ex.input for ex in examples],
        separator=separator,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    hits = [p.strip() == ex.output.strip() for p, ex in zip(preds, examples, strict=True)]
    return {
        "n": len(examples),
        "loss": example_loss(model, tok, examples, separator=separator, batch_size=batch_size),
        "exact_match": sum(hits) / len(hits),
        "predictions": [
            {"input": ex.input, "output": ex.output, "prediction": p, "correct": h}
            for ex, p, h in list(zip(examples, preds, hits, strict=True))[:keep_predictions]
        ],
    }
