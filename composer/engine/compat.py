"""Can these adapters be combined? Checked before any heavy work, with precise messages.

`check_compatible(adapters, method)` raises `IncompatibleAdapters` naming the first thing
that does not fit: the base model, the task type, the targeted modules, a module's shape,
or (for methods that mix A and B element-wise in peft) unequal ranks.
`check_against_model(adapters, model)` checks the modules against a loaded base model.

Both checks need only shapes: an `AdapterShapes` read from a safetensors header and a
config (`shapes_from_header`, no tensors loaded) serves wherever a `LoraAdapter` does, and
`check_against_weights` checks it against a base model's weight shapes, also read from
headers.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from composer.engine.adapters import LORA_KEY, LoraAdapter


@dataclass(frozen=True)
class ModuleShape:
    """A LoRA module's sizes: A is [r, d_in], B is [d_out, r]."""

    r: int
    d_in: int
    d_out: int


@dataclass
class AdapterShapes:
    """What the compatibility checks read of an adapter: its config and module shapes."""

    label: str
    config: dict
    modules: dict[str, ModuleShape]

    @property
    def base_model(self) -> str:
        return str(self.config.get("base_model_name_or_path") or "")

    @property
    def task_type(self) -> str | None:
        return self.config.get("task_type")

    @property
    def ranks(self) -> set[int]:
        return {m.r for m in self.modules.values()}


def shapes_from_header(
    shapes: Mapping[str, Sequence[int]], config: dict, label: str
) -> AdapterShapes:
    """An adapter's module shapes from its tensors' names and shapes (a safetensors
    header); raises IncompatibleAdapters when the A/B pairs do not fit together."""
    parts: dict[str, dict[str, Sequence[int]]] = {}
    for key, shape in shapes.items():
        m = LORA_KEY.match(key)
        if m:
            parts.setdefault(m["module"], {})[m["part"]] = shape
    modules = {}
    for name, p in sorted(parts.items()):
        a, b = p.get("A"), p.get("B")
        if a is None or b is None or len(a) != 2 or len(b) != 2 or a[0] != b[1]:
            raise IncompatibleAdapters(f"{label}: module {name} has no matching lora_A/lora_B")
        modules[name] = ModuleShape(r=a[0], d_in=a[1], d_out=b[0])
    if not modules:
        raise IncompatibleAdapters(f"{label}: the weights file holds no LoRA tensors")
    return AdapterShapes(label=label, config=config, modules=modules)


def check_against_weights(
    adapters: Sequence[LoraAdapter | AdapterShapes], weights: Mapping[str, Sequence[int]]
) -> None:
    """Every targeted module exists among a base model's weights (`<module>.weight` ->
    [d_out, d_in], read from its safetensors headers) with the adapter's shape."""
    for a in adapters:
        for name, m in sorted(a.modules.items()):
            shape = weights.get(f"{name}.weight")
            if shape is None:
                raise IncompatibleAdapters(
                    f"{a.label} targets {name}, which the base model does not have"
                )
            if tuple(shape) != (m.d_out, m.d_in):
                raise IncompatibleAdapters(
                    f"shape mismatch at {name}: the base model has (d_out, d_in) = "
                    f"{tuple(shape)}, {a.label} has ({m.d_out}, {m.d_in})"
                )


# Methods whose peft implementation requires every input to have the same rank.
EQUAL_RANK_METHODS = frozenset({"linear", "ties", "dare_linear", "dare_ties", "magnitude_prune"})


class IncompatibleAdapters(ValueError):
    """The inputs cannot be combined; the message says precisely why, in one line."""


def check_compatible(
    adapters: Sequence[LoraAdapter | AdapterShapes],
    method: str = "lorahub",
    *,
    base_model: str | None = None,
) -> None:
    """Raise `IncompatibleAdapters` unless `adapters` can be combined by `method`.

    All inputs must name the same base model (and `base_model` when given; an empty
    name matches anything), share the task type, target the same module paths, and agree
    on each module's (d_out, d_in). Mixed ranks are allowed except for peft's
    element-wise methods (`EQUAL_RANK_METHODS`).
    """
    if not adapters:
        raise IncompatibleAdapters("no adapters given")
    first = adapters[0]
    names = {a.base_model for a in adapters if a.base_model}
    if base_model:
        names.add(base_model)
    if len(names) > 1:
        detail = ", ".join(f"{a.label}: {a.base_model or '?'}" for a in adapters)
        expected = f" (expected {base_model})" if base_model else ""
        raise IncompatibleAdapters(f"adapters are for different base models{expected}: {detail}")
    tasks = {a.task_type for a in adapters if a.task_type}
    if len(tasks) > 1:
        detail = ", ".join(f"{a.label}: {a.task_type}" for a in adapters)
        raise IncompatibleAdapters(f"adapters have different task types: {detail}")
    ref = set(first.modules)
    for a in adapters[1:]:
        mods = set(a.modules)
        if mods != ref:
            extra, missing = sorted(mods - ref), sorted(ref - mods)
            parts = []
            if extra:
                parts.append(f"targets {_few(extra)} which {first.label} does not")
            if missing:
                parts.append(f"lacks {_few(missing)} which {first.label} targets")
            raise IncompatibleAdapters(
                f"{a.label} targets different modules than {first.label}: {'; '.join(parts)}"
            )
        for name in sorted(ref):
            m, m0 = a.modules[name], first.modules[name]
            if (m.d_out, m.d_in) != (m0.d_out, m0.d_in):
                raise IncompatibleAdapters(
                    f"shape mismatch at {name}: {first.label} has (d_out, d_in) = "
                    f"({m0.d_out}, {m0.d_in}), {a.label} has ({m.d_out}, {m.d_in})"
                )
    if method in EQUAL_RANK_METHODS:
        ranks = {a.label: sorted(a.ranks) for a in adapters}
        if len({tuple(r) for r in ranks.values()}) > 1 or any(len(r) > 1 for r in ranks.values()):
            detail = ", ".join(f"{k}: r={'/'.join(map(str, v))}" for k, v in ranks.items())
            raise IncompatibleAdapters(
                f"method {method!r} needs equal ranks ({detail}); use cat, svd, "
                "task_arithmetic or lego for mixed ranks"
            )


def check_against_model(adapters: Sequence[LoraAdapter], model: nn.Module) -> None:
    """Every targeted module exists in `model` as a Linear of the adapter's shape."""
    for a in adapters:
        for name, m in a.modules.items():
            try:
                layer = model.get_submodule(name)
            except AttributeError:
                raise IncompatibleAdapters(
                    f"{a.label} targets {name}, which the base model does not have"
                ) from None
            if not isinstance(layer, nn.Linear):
                raise IncompatibleAdapters(
                    f"{a.label} targets {name}, a {type(layer).__name__} (only Linear is supported)"
                )
            if (layer.out_features, layer.in_features) != (m.d_out, m.d_in):
                raise IncompatibleAdapters(
                    f"shape mismatch at {name}: the base model has (d_out, d_in) = "
                    f"({layer.out_features}, {layer.in_features}), {a.label} has "
                    f"({m.d_out}, {m.d_in})"
                )


def _few(names: Sequence[str], n: int = 2) -> str:
    more = len(names) - n
    return ", ".join(names[:n]) + (f" (and {more} more)" if more > 0 else "")
