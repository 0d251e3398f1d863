"""Tiny base models and LoRA adapters built in code, for tests, demos and benchmarks.

Nothing is downloaded: the tokenizer is byte-level (ByT5), the weights are random or
trained by our own scripts. Everything is saved with `save_pretrained`, so the code that
loads them is the same `from_pretrained` path users hit with real models.
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    ByT5Tokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)


def byte_tokenizer() -> ByT5Tokenizer:
    return ByT5Tokenizer(extra_ids=0)


def build_tiny_t5(
    out_dir: str | Path,
    *,
    d_model: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    d_ff: int = 128,
    seed: int = 0,
) -> Path:
    """A randomly initialised T5 (encoder-decoder) with a byte-level tokenizer."""
    torch.manual_seed(seed)
    tok = byte_tokenizer()
    config = T5Config(
        vocab_size=len(tok),
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=d_ff,
        num_layers=num_layers,
        num_decoder_layers=num_layers,
        num_heads=num_heads,
        decoder_start_token_id=tok.pad_token_id,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = T5ForConditionalGeneration(config)
    return _save(model, tok, out_dir)


def build_tiny_llama(
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    seed: int = 0,
) -> Path:
    """A randomly initialised Llama-style decoder-only model with a byte-level tokenizer."""
    torch.manual_seed(seed)
    tok = byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    return _save(model, tok, out_dir)


def make_random_adapter(
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    r: int = 4,
    alpha: int = 8,
    target_modules: Sequence[str] = ("q", "v"),
    seed: int = 0,
    init_std: float = 0.02,
    base_model_name: str | None = None,
) -> Path:
    """A PEFT LoRA adapter for `base_dir` with random non-zero A and B.

    peft initialises B to zero (ΔW = 0); here both are random so that adapters differ
    and merges have something to do. `base_model_name` is written to the config as
    `base_model_name_or_path` (defaults to the base directory).
    """
    from composer.engine.base_models import load_base_model

    peft_model = lora_wrap(load_base_model(base_dir), r=r, alpha=alpha, targets=target_modules)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * init_std)
    return lora_save(peft_model, out_dir, base_model_name or str(base_dir))


def lora_wrap(model, *, r: int, alpha: int, targets: Sequence[str]):
    """`model` with a fresh, dropout-free LoRA (peft's initialisation) on `targets`."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        target_modules=list(targets),
        lora_dropout=0.0,
        task_type="SEQ_2_SEQ_LM" if model.config.is_encoder_decoder else "CAUSAL_LM",
    )
    return get_peft_model(model, config)


def lora_save(peft_model, out_dir: str | Path, base_model_name: str) -> Path:
    """Save the LoRA as a PEFT dir whose config names `base_model_name` as its base."""
    peft_model.peft_config["default"].base_model_name_or_path = base_model_name
    out = Path(out_dir)
    peft_model.save_pretrained(out)
    return out


def _save(model, tok, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
