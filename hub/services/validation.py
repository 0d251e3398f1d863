"""Upload validation: one function that checks an adapter's files and reads its metadata.

`validate_adapter_files({filename: file}) -> AdapterMeta` is shared by the browser upload
and any other way files arrive (an API commit). It reads only bounded amounts (the JSON
config, the safetensors header, the model card), never loads tensors and never unpickles.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from composer.engine import strict_json
from composer.engine.patterns import (
    MAX_PATTERN_KEYS,
    PatternError,
    PatternMatcher,
    is_targeted,
    pattern_compile,
    pattern_work_check,
)

from .cards import card_check
from .repo_files import (
    PICKLE_MAGIC_MESSAGE,
    full_model_check,
    is_pickle,
    looks_pickled,
    repo_bounds_check,
    repo_file_check,
)
from .safetensors_header import (
    DTYPE_NAMES,
    TensorInfo,
    first_nonfinite,
    read_safetensors_header,
)

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CARD_FILE = "README.md"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE)
ALLOWED_FILES = (*REQUIRED_FILES, CARD_FILE)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_TEXT_BYTES = 1024 * 1024  # adapter_config.json and README.md
MAX_HEADER_BYTES = 16 * 1024 * 1024
# Config bounds: no real adapter comes near them (a rank of 2**31 overflowed the database).
MAX_RANK = 1 << 20
MAX_ALPHA = 1e9
MAX_TARGETS = 10_000
MAX_MODULE_CHARS = 1000

# peft saves module weights as "<prefix><module path>.<kind>"; the adapter name is dropped.
KEY_PREFIX = "base_model.model."
LORA_KEY = re.compile(
    r"^(?P<module>.+)\.(?P<kind>lora_A|lora_B|lora_embedding_A|lora_embedding_B)(\.weight)?$"
)
LORA_EXTRA_KEY = re.compile(r"\.(lora_B\.bias|lora_magnitude_vector(\.weight)?)$")

# A file handed to validation: an open binary file (Django's UploadedFile included) or a path.
FileLike = BinaryIO | str | os.PathLike


@dataclass
class AdapterMeta:
    """What the files say about an adapter."""

    peft_type: str
    r: int
    lora_alpha: float
    target_modules: list[str] | str
    dtype: str
    param_count: int
    config: dict[str, Any]
    base_model: str  # base_model_name_or_path from the config, as written
    task_type: str
    model_card: str | None  # README.md text, if one was given
    sizes: dict[str, int] = field(default_factory=dict)  # filename -> bytes
    modules: list[str] = field(default_factory=list)  # adapted module paths
    # A training run's other files (tokenizer, checkpoints...), stored as they are.
    extra_files: list[str] = field(default_factory=list)
    tensor_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # from the header


def validate_adapter_files(files: Mapping[str, FileLike]) -> AdapterMeta:
    """Check an adapter's files and return their metadata, or raise ValidationError.

    `files` maps a path (`adapter_config.json`, `adapter_model.safetensors`, optionally
    `README.md` and what a training run writes beside them, see repo_files) to an open
    binary file or a path. Open files are left open and rewound.
    """
    _check_names(files)
    max_bytes = settings.LORAHUB_MAX_FILE_BYTES
    sizes = {}
    for filename, f in files.items():
        sizes[filename] = file_size(f)
        if sizes[filename] > max_bytes:
            raise ValidationError(
                f"{filename} is {filesizeformat(sizes[filename])}, larger than the "
                f"{filesizeformat(max_bytes)} limit per file.",
                code="too_large",
            )
    repo_bounds_check(sizes)
    extra = sorted(name for name in files if name not in ALLOWED_FILES)
    for name in extra:
        if not name.endswith(".safetensors"):  # a header length may start like a pickle
            with _opened(files[name]) as fh:
                if looks_pickled(fh.read(4)) and not is_pickle(name):
                    raise ValidationError(PICKLE_MAGIC_MESSAGE.format(path=name), code="pickle")

    config = _read_config(files[CONFIG_FILE], sizes[CONFIG_FILE])
    with _opened(files[WEIGHTS_FILE]) as weights:
        tensors = read_safetensors_header(
            weights, sizes[WEIGHTS_FILE], filename=WEIGHTS_FILE, max_header_bytes=MAX_HEADER_BYTES
        )
        modules, lora_dtypes = _check_tensors_match_config(tensors, config)
        # Values are read only where the bytes are already on this machine (this request's
        # upload); from storage it would be a whole download, so jobs check them instead.
        if _is_local(files[WEIGHTS_FILE]) and (bad := first_nonfinite(weights, tensors)):
            raise ValidationError(
                f"{WEIGHTS_FILE}: tensor {bad!r} holds NaN or infinite values.",
                code="nonfinite",
            )

    card = None
    if CARD_FILE in files:
        card = _read_text(files[CARD_FILE], sizes[CARD_FILE], CARD_FILE)
        card_check(card, name=CARD_FILE)
    return AdapterMeta(
        peft_type=config["peft_type"],
        r=config["r"],
        lora_alpha=float(config["lora_alpha"]),
        target_modules=config["target_modules"],
        dtype=", ".join(sorted(DTYPE_NAMES.get(d, d.lower()) for d in lora_dtypes)),
        param_count=sum(t.numel for t in tensors.values()),
        config=config,
        base_model=str(config.get("base_model_name_or_path") or ""),
        task_type=str(config.get("task_type") or ""),
        model_card=card,
        sizes=sizes,
        modules=sorted(modules),
        tensor_shapes={name: t.shape for name, t in tensors.items()},
        extra_files=extra,
    )


def check_filename(filename: str) -> None:
    """Refuse, by name, pickles the Trainer does not write and anything that is neither an
    adapter file nor a training run's (repo_files)."""
    if filename in ALLOWED_FILES or is_pickle(filename):
        return
    full_model_check(filename)
    if filename.lower().endswith(PICKLE_SUFFIXES):
        raise ValidationError(
            f"{filename} is a pickle file, which can run arbitrary code when loaded. LoRA Hub "
            "accepts weights only as safetensors: save with "
            "save_pretrained(..., safe_serialization=True) and upload adapter_model.safetensors.",
            code="pickle",
        )
    repo_file_check(filename)


def _check_names(files: Mapping[str, FileLike]) -> None:
    for filename in files:
        check_filename(filename)
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise ValidationError(
            f"Missing {' and '.join(missing)}: upload the files that save_pretrained writes "
            f"({CONFIG_FILE} and {WEIGHTS_FILE}), or a zip of that folder.",
            code="missing",
        )


def _read_config(f: FileLike, size: int) -> dict[str, Any]:
    return config_parse(_read_text(f, size, CONFIG_FILE))


def config_parse(text: str) -> dict[str, Any]:
    """adapter_config.json's text as a checked dict, or ValidationError."""

    def malformed(reason: str) -> ValidationError:
        return ValidationError(f"{CONFIG_FILE}: {reason}.", code="malformed")

    try:
        config = strict_json.loads(text)
    except strict_json.JSONInputError as exc:
        raise ValidationError(
            f"{CONFIG_FILE} is not valid JSON: {exc}.", code="malformed"
        ) from None
    if not isinstance(config, dict):
        raise ValidationError(f"{CONFIG_FILE} must hold a JSON object.", code="malformed")
    if config.get("peft_type") != "LORA":
        raise ValidationError(
            f"{CONFIG_FILE} has peft_type {str(config.get('peft_type'))[:40]!r}; LoRA Hub holds "
            'LoRA adapters (peft_type "LORA").',
            code="malformed",
        )
    if not _is_rank(config.get("r")):
        raise malformed(f"r must be a whole number from 1 to {MAX_RANK:,}")
    if not _is_alpha(config.get("lora_alpha")):
        raise malformed("lora_alpha must be a positive number")
    targets = config.get("target_modules")
    valid_list = (
        isinstance(targets, list)
        and 0 < len(targets) <= MAX_TARGETS
        and all(isinstance(t, str) and 0 < len(t) <= MAX_MODULE_CHARS for t in targets)
    )
    if not (valid_list or (isinstance(targets, str) and targets)):
        raise malformed(
            f"target_modules must be a list of at most {MAX_TARGETS} module names or a regular "
            "expression"
        )
    if isinstance(targets, str) and targets != "all-linear":
        _check_pattern(targets, "target_modules")
    for key, valid, what in (
        ("rank_pattern", _is_rank, f"whole numbers from 1 to {MAX_RANK:,}"),
        ("alpha_pattern", _is_alpha, "positive numbers"),
    ):
        patterns = config.get(key) or {}
        if not isinstance(patterns, dict) or len(patterns) > MAX_PATTERN_KEYS:
            raise malformed(
                f"{key} must be an object of at most {MAX_PATTERN_KEYS} patterns (a pattern "
                "may name many modules, e.g. layers\\.[0-9]+\\.mlp\\..*)"
            )
        for pattern, value in patterns.items():
            _check_pattern(pattern, key)
            if not valid(value):
                raise malformed(f"{key} maps patterns to {what}; {pattern[:80]!r} has {value!r}")
    return config


def _check_pattern(pattern: str, key: str) -> None:
    """peft matches these as regexes; they must compile with RE2 (linear-time matching)."""
    try:
        pattern_compile(pattern)
    except PatternError as exc:
        raise ValidationError(
            f"{CONFIG_FILE}: {key}: {exc}. Module patterns are matched with RE2: no "
            "backreferences or lookaround.",
            code="malformed",
        ) from None


def _is_rank(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_RANK


def _is_alpha(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= MAX_ALPHA


def _check_tensors_match_config(
    tensors: dict[str, TensorInfo], config: dict[str, Any]
) -> tuple[set[str], set[str]]:
    """Every LoRA tensor belongs to a targeted module, with A and B of the configured rank.

    Shapes: A is [r, d_in] (or [r, num_embeddings]), B is [d_out, r]. Returns the module
    paths and the dtypes of the LoRA tensors.
    """
    pairs: dict[str, dict[str, TensorInfo]] = {}
    dtypes: set[str] = set()
    allows_extra = bool(config.get("modules_to_save") or config.get("trainable_token_indices"))
    for key, info in tensors.items():
        path = key.removeprefix(KEY_PREFIX)
        match = LORA_KEY.match(path)
        if match is None:
            if LORA_EXTRA_KEY.search(path) or allows_extra:
                continue
            raise _mismatch(f"tensor {key!r} is not a LoRA weight (lora_A / lora_B)")
        side = "A" if match["kind"].endswith("A") else "B"
        pairs.setdefault(match["module"], {})[side] = info
        dtypes.add(info.dtype)
    if not pairs:
        raise _mismatch("it holds no LoRA weights (no lora_A / lora_B tensors)")

    targets = config["target_modules"]
    if isinstance(targets, list):
        targets = set(targets)
    try:
        # Bounded before any matching; both are matched again when the adapter is loaded.
        pattern_work_check(
            [config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}], pairs
        )
        ranks = PatternMatcher(config.get("rank_pattern"))
    except PatternError as exc:
        raise ValidationError(
            f"{CONFIG_FILE}: rank_pattern and alpha_pattern: {exc}.", code="malformed"
        ) from None
    for module, sides in sorted(pairs.items()):
        if "A" not in sides or "B" not in sides:
            have, lack = ("A", "B") if "A" in sides else ("B", "A")
            raise _mismatch(f"module {module!r} has lora_{have} but no lora_{lack}")
        if not is_targeted(module, targets):
            raise _mismatch(
                f"module {module!r} has LoRA weights but is not in target_modules "
                f"{_shortened(config['target_modules'])}"
            )
        a, b = sides["A"], sides["B"]
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise _mismatch(
                f"module {module!r}: lora_A {list(a.shape)} and lora_B {list(b.shape)} must be "
                "matrices"
            )
        if a.dtype not in DTYPE_NAMES or b.dtype not in DTYPE_NAMES:
            raise _mismatch(
                f"module {module!r}: LoRA weights are floating point; lora_A is {a.dtype} and "
                f"lora_B {b.dtype}"
            )
        if a.numel == 0 or b.numel == 0:
            raise _mismatch(
                f"module {module!r}: lora_A {list(a.shape)} or lora_B {list(b.shape)} is empty"
            )
        expected = ranks.value(module, config["r"])
        if a.shape[0] != expected or b.shape[1] != expected:
            raise _mismatch(
                f"module {module!r}: lora_A has shape {list(a.shape)} and lora_B "
                f"{list(b.shape)}, but {CONFIG_FILE} says rank r={expected} "
                f"(lora_A must be [{expected}, d_in] and lora_B [d_out, {expected}])"
            )
    return set(pairs), dtypes


def _shortened(value, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _mismatch(reason: str) -> ValidationError:
    return ValidationError(
        f"{WEIGHTS_FILE} does not match {CONFIG_FILE}: {reason}.", code="mismatch"
    )


def _read_text(f: FileLike, size: int, filename: str) -> str:
    if size > MAX_TEXT_BYTES:
        raise ValidationError(
            f"{filename} is {filesizeformat(size)}; at most {filesizeformat(MAX_TEXT_BYTES)} "
            "is accepted.",
            code="too_large",
        )
    with _opened(f) as fh:
        data = fh.read(MAX_TEXT_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{filename} is not UTF-8 text.", code="malformed") from None


def _is_local(f: FileLike) -> bool:
    """A path, a file this request received (Django spools uploads to disk), or one marked
    `local` (a Hub API commit's inline file)."""
    return (
        isinstance(f, str | os.PathLike)
        or hasattr(f, "temporary_file_path")
        or getattr(f, "local", False) is True
    )


def file_size(f: FileLike) -> int:
    """The size of a path or an open file; Django uploads report theirs in `.size`."""
    if isinstance(f, str | os.PathLike):
        return Path(f).stat().st_size
    size = getattr(f, "size", None)
    if isinstance(size, int):
        return size
    position = f.tell()
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(position)
    return size


class _opened:
    """Context manager: open a path, or rewind an open file (and rewind it again after)."""

    def __init__(self, f: FileLike):
        self.f, self.owned = f, isinstance(f, str | os.PathLike)

    def __enter__(self) -> BinaryIO:
        if self.owned:
            self.handle = open(self.f, "rb")  # closed in __exit__
        else:
            self.handle = self.f
            self.handle.seek(0)
        return self.handle

    def __exit__(self, *exc):
        if self.owned:
            self.handle.close()
        else:
            self.handle.seek(0)
