"""Loading base models and their tokenizers from a directory (the `from_pretrained` path)."""

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer


def is_encoder_decoder(base_dir: str | Path) -> bool:
    return bool(AutoConfig.from_pretrained(base_dir).is_encoder_decoder)


def load_base_model(
    base_dir: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
):
    """The base model in eval mode: seq2seq for encoder-decoder configs, causal LM otherwise."""
    cls = AutoModelForSeq2SeqLM if is_encoder_decoder(base_dir) else AutoModelForCausalLM
    model = cls.from_pretrained(base_dir, dtype=dtype) if dtype else cls.from_pretrained(base_dir)
    return model.to(device).eval()


def load_tokenizer(base_dir: str | Path):
    return AutoTokenizer.from_pretrained(base_dir)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device`, or CUDA when available and the CPU otherwise; a clear error for a bad one."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    return dev
