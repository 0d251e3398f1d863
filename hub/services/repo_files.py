"""What an adapter repository may hold besides the adapter: a training run's other files.

`Trainer(push_to_hub=True)` and `tokenizer.push_to_hub` commit tokenizer files, the chat
template, generation_config.json, training_args.bin, trainer_state.json, TensorBoard logs
under runs/ and checkpoint folders (checkpoint-N/, last-checkpoint/). They are stored and
served as they are, bounded in count and bytes (LORAHUB_MAX_REPO_FILES,
LORAHUB_MAX_REPO_BYTES). Nothing here is ever loaded by the hub.

Pickles (training_args.bin, optimizer.pt, rng_state.pth...) are accepted only under the
names the Trainer gives them, and marked as pickles wherever files are listed. Any other
file whose first bytes are a pickle (protocol 2+) or a zip (torch.save's format) is
refused, so a pickle cannot pass unmarked under another name. Detection reads magic bytes
only; nothing is ever unpickled.
"""

import re
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")
TOKENIZER_FILES = re.compile(
    r"tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|added_tokens\.json"
    r"|vocab\.(json|txt)|merges\.txt|(tokenizer|spiece|sentencepiece\.bpe|source|target)\.model"
    r"|chat_template\.(jinja|json)|processor_config\.json|preprocessor_config\.json"
)
RUN_FILES = re.compile(
    r"generation_config\.json|trainer_state\.json|(all|train|eval|test)_results\.json"
    r"|\.gitattributes"
)
# Pickles the Trainer writes: accepted under these names only, and always marked.
PICKLE_FILES = re.compile(
    r"training_args\.bin|optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state(_\d{1,5})?\.pth"
)
CHECKPOINT_FOLDER = re.compile(r"checkpoint-\d{1,12}|last-checkpoint")
RUN_LOG = re.compile(r"events\.out\.tfevents\.[\w.-]{1,150}")
PART = re.compile(r"[\w.][\w.+-]{0,149}")
MAX_PATH = 200  # AdapterFile.filename
MAX_RUN_DEPTH = 4  # runs/<run>/<sub>/events...
# A full model's weights: the hub holds adapters (see README, "Hub API").
FULL_MODEL = re.compile(
    r"(pytorch_)?model(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?|tf_model\.h5"
    r"|flax_model\.msgpack|.*\.gguf|consolidated(\.\d+)?\.(pth|safetensors)"
)

PICKLE_MAGIC_MESSAGE = (
    "{path} is a pickle (its first bytes say so). LoRA Hub stores pickles only under the "
    "names the Trainer gives them (training_args.bin, optimizer.pt, scheduler.pt, "
    "rng_state.pth), where they are marked as such."
)


def is_pickle(path: str) -> bool:
    """Whether the hub marks this stored file as a pickle that it never loads."""
    return bool(PICKLE_FILES.fullmatch(path.rsplit("/", 1)[-1]))


def repo_file_check(path: str) -> None:
    """Refuse a path that is neither an adapter file nor a training run's file."""
    parts = path.split("/")
    if len(path) > MAX_PATH or not all(PART.fullmatch(p) and p not in (".", "..") for p in parts):
        raise ValidationError(
            f"{path[:100]!r} is not an accepted file path: at most {MAX_PATH} characters of "
            "letters, digits, '.', '_', '+' and '-', in folders.",
            code="unexpected_file",
        )
    name = parts[-1]
    full_model_check(path)
    if parts[0] == "runs" and 2 <= len(parts) <= MAX_RUN_DEPTH and RUN_LOG.fullmatch(name):
        return
    in_checkpoint = len(parts) == 2 and CHECKPOINT_FOLDER.fullmatch(parts[0])
    if len(parts) == 1 or in_checkpoint:
        if (
            TOKENIZER_FILES.fullmatch(name)
            or RUN_FILES.fullmatch(name)
            or PICKLE_FILES.fullmatch(name)
            or (in_checkpoint and name in ADAPTER_FILES)
        ):
            return
    raise ValidationError(
        f"Unexpected file {path[:100]!r}: an adapter repository holds adapter_config.json, "
        "adapter_model.safetensors, README.md and what a training run writes beside them "
        "(tokenizer files, chat_template.jinja, generation_config.json, training_args.bin, "
        "trainer_state.json, checkpoint-N/ folders, runs/ logs).",
        code="unexpected_file",
    )


def full_model_check(path: str) -> None:
    """Refuse a full model's weights at the top of the repository, saying why."""
    if FULL_MODEL.fullmatch(path):
        raise ValidationError(
            f"{path} holds a full model's weights. LoRA Hub holds LoRA adapters: push the "
            "adapter (save_pretrained of the PeftModel writes adapter_config.json and "
            "adapter_model.safetensors), not a merged model.",
            code="full_model",
        )


def repo_bounds_check(sizes: Mapping[str, int]) -> None:
    """At most LORAHUB_MAX_REPO_FILES files and LORAHUB_MAX_REPO_BYTES bytes in a version."""
    count, limit = len(sizes), settings.LORAHUB_MAX_REPO_FILES
    if count > limit:
        raise ValidationError(
            f"This version would hold {count} files; an adapter repository holds at most "
            f"{limit}. Delete old checkpoint folders or logs (delete_folder) first.",
            code="too_many_files",
        )
    total, limit = sum(sizes.values()), settings.LORAHUB_MAX_REPO_BYTES
    if total > limit:
        raise ValidationError(
            f"This version's files add up to {filesizeformat(total)}; an adapter repository "
            f"holds at most {filesizeformat(limit)}. Delete old checkpoint folders first.",
            code="too_large",
        )


def looks_pickled(head: bytes) -> bool:
    """A pickle of protocol 2 or later, or a zip (torch.save writes a pickle in one)."""
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head.startswith(
        b"PK\x03\x04"
    )
