"""PEFT LoRA adapters in and out, without a base model and without unpickling anything.

A PEFT LoRA directory holds `adapter_config.json` and `adapter_model.safetensors` whose keys
look like `base_model.model.<module path>.lora_A.weight` ([r, d_in]) and `...lora_B.weight`
([d_out, r]). We read them into `LoraModule`s keyed by the module path inside the base model
(e.g. `encoder.block.0.layer.0.SelfAttention.q`) and write results back in the same layout,
so `PeftModel.from_pretrained` loads them unchanged.
"""

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .patterns import PatternError, PatternMatcher, pattern_work_check

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
RESULT_NAME = "result.json"
PICKLE_NAMES = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth", "adapter_model.ckpt")
KEY_PREFIX = "base_model.model."
LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")


class AdapterError(ValueError):
    """An adapter cannot be read or written; the message is one human-readable line."""


@dataclass
class LoraModule:
    """One LoRA-targeted Linear: ΔW = scale · B @ A."""

    A: torch.Tensor  # [r, d_in]
    B: torch.Tensor  # [d_out, r]
    scale: float

    @property
    def r(self) -> int:
        return self.A.shape[0]

    @property
    def d_in(self) -> int:
        return self.A.shape[1]

    @property
    def d_out(self) -> int:
        return self.B.shape[0]

    def delta(self) -> torch.Tensor:
        """ΔW [d_out, d_in] in float32."""
        return self.scale * (self.B.float() @ self.A.float())


@dataclass
class LoraAdapter:
    """A LoRA adapter read from a PEFT directory (or built in memory)."""

    path: Path | None
    config: dict
    modules: dict[str, LoraModule]
    sha256: str | None = None
    name: str = ""
    stored_dtype: str = "float32"  # the dtype of the weights file (tensors are loaded as float32)

    @property
    def base_model(self) -> str:
        return str(self.config.get("base_model_name_or_path") or "")

    @property
    def r(self) -> int:
        """The config's rank (modules may differ through `rank_pattern`)."""
        return int(self.config.get("r", 0))

    @property
    def alpha(self) -> float:
        return float(self.config.get("lora_alpha", self.r))

    @property
    def task_type(self) -> str | None:
        return self.config.get("task_type")

    @property
    def target_modules(self) -> list[str]:
        """Sorted distinct last components of the targeted module paths (e.g. ["q", "v"])."""
        return sorted({m.rsplit(".", 1)[-1] for m in self.modules})

    @property
    def ranks(self) -> set[int]:
        return {m.r for m in self.modules.values()}

    @property
    def label(self) -> str:
        return self.name or (self.path.name if self.path else "adapter")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_adapter(adapter_dir: str | Path, *, dtype: torch.dtype = torch.float32) -> LoraAdapter:
    """Read a PEFT LoRA directory (safetensors only: a pickle is refused, never loaded)."""
    d = Path(adapter_dir)
    if not d.is_dir():
        raise AdapterError(f"adapter directory not found: {d}")
    config_path, weights_path = d / CONFIG_NAME, d / WEIGHTS_NAME
    if not config_path.is_file():
        raise AdapterError(f"{d}: no {CONFIG_NAME} (not a PEFT adapter directory)")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AdapterError(f"{config_path}: unreadable JSON ({one_line(e)})") from None
    if not isinstance(config, dict):
        raise AdapterError(f"{config_path}: expected a JSON object")
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise AdapterError(f"{d}: peft_type is {config.get('peft_type')!r}, only LORA is supported")
    for flag, what in (("use_dora", "DoRA"), ("lora_bias", "LoRA bias")):
        if config.get(flag):
            raise AdapterError(f"{d}: {what} adapters are not supported")
    if config.get("modules_to_save"):
        raise AdapterError(f"{d}: modules_to_save ({config['modules_to_save']}) is not supported")
    if not weights_path.is_file():
        pickled = [n for n in PICKLE_NAMES if (d / n).exists()]
        if pickled:
            raise AdapterError(
                f"{d}: only safetensors weights are accepted; {pickled[0]} is a pickle and "
                "is never loaded (convert it to adapter_model.safetensors)"
            )
        raise AdapterError(f"{d}: no {WEIGHTS_NAME}")
    tensors, stored_dtype = _read_safetensors(weights_path, dtype)
    modules = modules_from_state_dict(tensors, config, source=str(d))
    return LoraAdapter(
        path=d,
        config=config,
        modules=modules,
        sha256=sha256_file(weights_path),
        name=d.name,
        stored_dtype=stored_dtype,
    )


def _read_safetensors(path: Path, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors converted to `dtype`, and the stored dtype (e.g. "bfloat16")."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise AdapterError(f"{path}: unreadable safetensors file ({one_line(e)})") from None
    dtypes = {t.dtype for t in raw.values()}
    bad = sorted(str(d) for d in dtypes if not d.is_floating_point)
    if bad:
        raise AdapterError(f"{path}: LoRA weights must be floating point, found {bad[0]}")
    stored_dtype = str(dtypes.pop()).removeprefix("torch.") if len(dtypes) == 1 else "float32"
    tensors = {k: t.to(dtype) for k, t in raw.items()}
    for key, t in tensors.items():
        # The values are read here anyway (an upload's check reads only the header): a NaN
        # or an infinity would spread through every sum it enters.
        if not bool(torch.isfinite(t).all()):
            raise AdapterError(f"{path}: tensor {key} holds NaN or infinite values")
    return tensors, stored_dtype


def module_scale(
    config: Mapping, module: str, r: int, alphas: PatternMatcher | None = None
) -> float:
    """alpha / r (alpha / √r with rsLoRA), honouring `alpha_pattern` (`alphas`, its keys
    compiled once, when scaling many modules)."""
    alphas = alphas or PatternMatcher(config.get("alpha_pattern"))
    alpha = float(alphas.value(module, config.get("lora_alpha", r)))
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def modules_from_state_dict(
    tensors: Mapping[str, torch.Tensor], config: Mapping, *, source: str = "adapter"
) -> dict[str, LoraModule]:
    """Pair PEFT `...lora_A.weight` / `...lora_B.weight` tensors into LoraModules."""
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        m = LORA_KEY.match(key)
        if not m:
            raise AdapterError(f"{source}: unsupported tensor {key!r} (only LoRA A/B weights)")
        parts.setdefault(m["module"], {})[m["part"]] = t
    if not parts:
        raise AdapterError(f"{source}: the weights file holds no LoRA tensors")
    try:
        pattern_work_check([config.get("alpha_pattern") or {}], parts)
        alphas = PatternMatcher(config.get("alpha_pattern"))
    except PatternError as e:
        raise AdapterError(f"{source}: alpha_pattern: {e}") from None
    modules = {}
    for name in sorted(parts):
        p = parts[name]
        if set(p) != {"A", "B"}:
            missing = ({"A", "B"} - set(p)).pop()
            raise AdapterError(f"{source}: module {name} has no lora_{missing} weight")
        A, B = p["A"], p["B"]
        if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[1]:
            raise AdapterError(
                f"{source}: module {name} has inconsistent shapes A {tuple(A.shape)}, "
                f"B {tuple(B.shape)} (expected A [r, d_in], B [d_out, r])"
            )
        if A.numel() == 0 or B.numel() == 0:
            raise AdapterError(f"{source}: module {name} has an empty lora_A or lora_B")
        scale = module_scale(config, name, A.shape[0], alphas)
        modules[name] = LoraModule(A=A, B=B, scale=scale)
    return modules


def save_adapter(
    out_dir: str | Path,
    modules: Mapping[str, LoraModule],
    *,
    base_model: str,
    task_type: str | None = None,
    result: Mapping | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a PEFT LoRA directory (+ `result.json` when given) into `out_dir`.

    Each module keeps its own rank and scale: the config's r / lora_alpha are those of the
    first module, and `rank_pattern` / `alpha_pattern` list the modules that differ, so peft
    rebuilds exactly scale · B @ A everywhere.
    """
    from peft import LoraConfig

    if not modules:
        raise AdapterError("nothing to save: the adapter has no modules")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(modules)
    first = modules[names[0]]
    r0, alpha0 = first.r, first.scale * first.r
    rank_pattern = {n: modules[n].r for n in names if modules[n].r != r0}
    alpha_pattern = {
        n: modules[n].scale * modules[n].r
        for n in names
        if not math.isclose(modules[n].scale * modules[n].r, alpha0, rel_tol=1e-9)
    }
    config = LoraConfig(
        r=r0,
        lora_alpha=_plain_number(alpha0),
        target_modules=sorted({n.rsplit(".", 1)[-1] for n in names}),
        rank_pattern=rank_pattern,
        alpha_pattern={k: _plain_number(v) for k, v in alpha_pattern.items()},
        lora_dropout=0.0,
        task_type=task_type,
        base_model_name_or_path=base_model,
        inference_mode=True,
    )
    config.save_pretrained(str(out))
    tensors = {}
    for n in names:
        m = modules[n]
        tensors[f"{KEY_PREFIX}{n}.lora_A.weight"] = m.A.detach().to("cpu", dtype).contiguous()
        tensors[f"{KEY_PREFIX}{n}.lora_B.weight"] = m.B.detach().to("cpu", dtype).contiguous()
    save_file(tensors, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    if result is not None:
        write_result(out, result)
    return out


def write_result(out_dir: str | Path, result: Mapping) -> Path:
    path = Path(out_dir) / RESULT_NAME
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return path


def load_adapters(adapter_dirs: Sequence[str | Path], **kwargs) -> list[LoraAdapter]:
    """Load several adapters; names are made distinct (`dir`, `dir#2`) for messages."""
    if not adapter_dirs:
        raise AdapterError("no adapters given")
    adapters = [load_adapter(d, **kwargs) for d in adapter_dirs]
    seen: dict[str, int] = {}
    for a in adapters:
        seen[a.name] = seen.get(a.name, 0) + 1
        if seen[a.name] > 1:
            a.name = f"{a.name}#{seen[a.name]}"
    return adapters


def adapter_info(a: LoraAdapter) -> dict:
    """What a result records of an input adapter."""
    return {
        "name": a.label,
        "path": str(a.path) if a.path else None,
        "sha256": a.sha256,
        "r": a.r,
        "alpha": a.alpha,
        "dtype": a.stored_dtype,
        "base_model": a.base_model,
    }


def _plain_number(x: float) -> float | int:
    return int(round(x)) if math.isclose(x, round(x), rel_tol=0, abs_tol=1e-9) else float(x)


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
