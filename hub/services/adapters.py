"""Writes to the catalog: creating, uploading versions of, editing and deleting adapters."""

import hashlib
import io
import re
from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from composer.engine.adapters import LORA_KEY
from composer.engine.compat import IncompatibleAdapters, shapes_from_header

from ..choices import TASK_FOR_PEFT_TASK_TYPE
from ..models import Adapter, AdapterFile, AdapterVersion, BaseModel, Tag
from .card_file import card_file, has_front_matter, stored_card
from .card_metadata import card_metadata
from .cards import card_check, card_render
from .namespaces import adapter_id_check, new_base_model_check
from .quota import files_quota_check
from .search import adapter_words_forget, adapters_reindex
from .shapes import check_fits_base_model
from .storage import blob_store, blobs_delete_unreferenced, storage_discard
from .validation import (
    CARD_FILE,
    WEIGHTS_FILE,
    AdapterMeta,
    FileLike,
    validate_adapter_files,
)

ADAPTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
BASE_MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
MAX_TAGS = 10
FRONT_MATTER = re.compile(r"\A---\r?\n.*?\r?\n---\r?\n", re.DOTALL)


def adapter_create(
    *,
    owner,
    name: str,
    files: Mapping[str, FileLike],
    description: str = "",
    task: str = "",
    license: str = "",
    private: bool = False,
    tags: Iterable[str] = (),
    base_model: str = "",
    message: str = "Initial upload",
) -> Adapter:
    """Create `owner/name` with its first version from `files` (see validate_adapter_files).

    The base model is `base_model` if given, else the config's base_model_name_or_path;
    a README.md among the files becomes the model card, else `description`.
    Raises ValidationError; on failure nothing is stored.
    """
    if not ADAPTER_NAME.fullmatch(name):
        raise ValidationError(
            "Adapter names use letters, digits, '.', '_' and '-', start with a letter or "
            "digit, and have at most 96 characters.",
            code="invalid_name",
        )
    if Adapter.objects.filter(owner=owner, name=name).exists():
        raise ValidationError(f"You already have an adapter named {name}.", code="exists")
    adapter_id_check(owner.get_username(), name)
    meta = validate_adapter_files(files)
    card = card_body(meta.model_card) if meta.model_card else description
    card_check(card)
    # The card's front matter fills what the uploader left empty.
    from_card = card_metadata(meta.model_card, MAX_TAGS)
    tags = list(tags) or from_card.tags
    identifier = base_model.strip() or meta.base_model
    if not BASE_MODEL_ID.fullmatch(identifier):
        raise ValidationError(
            f"adapter_config.json names the base model {identifier!r}, which is not a model "
            "identifier such as google/flan-t5-large: enter the base model's identifier.",
            code="base_model",
        )
    registered = BaseModel.objects.filter(identifier=identifier).first()
    if registered is not None:
        _check_fits(meta, registered, name)
    else:
        new_base_model_check(identifier)
    # The uploader's choices win over the card's block: README.md is then rewritten.
    overridden = (
        (license and license != from_card.license)
        or (task and task != from_card.task)
        or tags != from_card.tags
    )
    task = task or from_card.task or TASK_FOR_PEFT_TASK_TYPE.get(meta.task_type, "")
    license = license or from_card.license
    if overridden or not has_front_matter(meta.model_card):
        # Served as README.md: ModelCard.load and card_data read the fields from it.
        text = card_file(
            body=card,
            base_model=identifier,
            license=license,
            task=task,
            tags=tags,
            card_data=from_card.extra,
            previous=meta.model_card,
        )
        files = {**files, CARD_FILE: io.BytesIO(text.encode())}
    with transaction.atomic():
        try:
            with transaction.atomic():
                adapter = Adapter.objects.create(
                    owner=owner,
                    name=name,
                    description=card,
                    description_html=card_render(card),
                    task=task,
                    license=license,
                    card_data=from_card.extra,
                    private=private,
                    base_model=base_model_get_or_create(identifier),
                )
        except IntegrityError:
            # Two uploads of the same name at once: the unique constraint decides.
            raise ValidationError(
                f"You already have an adapter named {name}.", code="exists"
            ) from None
        adapter.tags.set(tags_get_or_create(tags))
        _version_create(adapter, meta, files, user=owner, message=message)
    return adapter


def adapter_upload(
    *,
    adapter: Adapter,
    files: Mapping[str, FileLike],
    user,
    message: str = "",
    keep_card: bool = False,
) -> AdapterVersion:
    """Add a version to `adapter` from `files`; it becomes the current version.

    A README.md among the files replaces the model card; without one, `keep_card` (a
    browser upload of new weights) writes README.md from the adapter's fields, else (a
    commit that deleted it) the version has none. Refused (ValidationError) if the
    files are for another base model or identical to the current version.
    """
    meta = validate_adapter_files(files)
    from_card = card_metadata(meta.model_card, MAX_TAGS)
    declared = meta.base_model
    if declared and BASE_MODEL_ID.fullmatch(declared) and declared != adapter.base_model.identifier:
        raise ValidationError(
            f"These files are for {declared}, but {adapter.full_name} adapts "
            f"{adapter.base_model.identifier}: create a new adapter instead.",
            code="base_model",
        )
    _check_fits(meta, adapter.base_model, adapter.full_name)
    with transaction.atomic():
        adapter = Adapter.objects.select_for_update().get(pk=adapter.pk)
        if keep_card and CARD_FILE not in files:
            files = {**files, CARD_FILE: io.BytesIO(_card_of(adapter).encode())}
        version = _version_create(adapter, meta, files, user=user, message=message)
        if meta.model_card:
            adapter.description = card_body(meta.model_card)
            adapter.description_html = card_render(adapter.description)
            # A new card's metadata replaces what the last one said (tags: added).
            adapter.license = from_card.license or adapter.license
            adapter.task = from_card.task or adapter.task
            adapter.card_data = from_card.extra
            adapter.save(
                update_fields=[
                    *("description", "description_html", "license", "task", "card_data"),
                    "updated",
                ]
            )
            if from_card.tags:  # added to the adapter's own, never dropping one
                have = list(adapter.tags.values_list("name", flat=True))
                names = list(dict.fromkeys([*have, *from_card.tags]))[:MAX_TAGS]
                adapter.tags.set(tags_get_or_create(names))
            adapters_reindex(Adapter.objects.filter(pk=adapter.pk))
    return version


def adapter_update(
    *,
    adapter: Adapter,
    description: str,
    task: str,
    license: str,
    private: bool,
    tags: Iterable[str],
    user=None,
) -> Adapter:
    """Edit what the owner declares about an adapter (never what its files say).

    README.md is rewritten to match: a new version with the same adapter files, as an
    edit of the card on the Hub is a commit."""
    card_check(description)
    with transaction.atomic():
        if description != adapter.description:  # rendering is most of an edit's cost
            adapter.description_html = card_render(description)
        adapter.description = description
        adapter.task = task
        adapter.license = license
        adapter.private = private
        # Only these: the search columns of this (maybe stale) object are reindex's to write.
        adapter.save(
            update_fields=[
                "description",
                "description_html",
                "task",
                "license",
                "private",
                "updated",
            ]
        )
        adapter.tags.set(tags_get_or_create(tags))
        _card_version_create(adapter, user or adapter.owner)
        adapters_reindex(Adapter.objects.filter(pk=adapter.pk))
    return adapter


def _card_of(adapter: Adapter) -> str:
    """README.md from the adapter's fields, keeping the other keys of its current card."""
    return card_file(
        body=adapter.description,
        base_model=adapter.base_model.identifier,
        license=adapter.license,
        task=adapter.task,
        tags=adapter.tags.values_list("name", flat=True),
        card_data=adapter.card_data,
        previous=stored_card(adapter.current_version),
    )


def _card_version_create(adapter: Adapter, user) -> None:
    """A new version whose README.md is _card_of(adapter), its other files unchanged."""
    current = adapter.current_version
    if current is None:
        return
    blob, written = blob_store(io.BytesIO(_card_of(adapter).encode()))
    try:
        with transaction.atomic():
            blobs = dict(current.files.values_list("filename", "blob_id"))
            if blobs.get(CARD_FILE) == blob.sha256:
                return
            blobs[CARD_FILE] = blob.sha256
            number = adapter.versions.order_by("-number").values_list("number", flat=True)[0] + 1
            copied = ("peft_type", "r", "lora_alpha", "target_modules", "dtype", "param_count")
            version = AdapterVersion.objects.create(
                adapter=adapter,
                number=number,
                commit=commit_id(adapter, number, blobs),
                message="Edit the model card",
                created_by=user,
                config=current.config,
                **{name: getattr(current, name) for name in copied},
            )
            AdapterFile.objects.bulk_create(
                AdapterFile(version=version, filename=fn, blob_id=sha) for fn, sha in blobs.items()
            )
            adapter.current_version = version
            adapter.save(update_fields=["current_version", "updated"])
    except BaseException:
        storage_discard([written] if written else [])
        raise


def adapter_delete(*, adapter: Adapter) -> None:
    """Delete an adapter, its versions and the stored files nothing else uses."""
    with transaction.atomic():
        shas = set(
            AdapterFile.objects.filter(version__adapter=adapter).values_list("blob_id", flat=True)
        )
        Adapter.objects.filter(pk=adapter.pk).update(current_version=None, current_r=None)
        adapter_words_forget(adapter)
        adapter.delete()
        blobs_delete_unreferenced(shas)


def _check_fits(meta: AdapterMeta, base: BaseModel, label: str) -> None:
    """Refuse weights whose matrices do not fit the base model's (when its files are
    known): such an adapter could never be loaded or composed."""
    if not any(LORA_KEY.match(name) for name in meta.tensor_shapes):
        return  # no lora_A/B.weight matrices (e.g. embeddings only): nothing to compare
    try:
        shapes = shapes_from_header(meta.tensor_shapes, meta.config, label)
        check_fits_base_model([shapes], base)
    except IncompatibleAdapters as exc:
        raise ValidationError(
            f"{WEIGHTS_FILE} does not fit the base model {base.identifier}: {exc}.",
            code="shape",
        ) from None


def base_model_get_or_create(identifier: str) -> BaseModel:
    base, _ = BaseModel.objects.get_or_create(identifier=identifier)
    return base


def tags_parse(text: str) -> list[str]:
    """'Summarization, t5  news' -> ['summarization', 't5', 'news'] (slugs, unique, capped)."""
    tags = []
    for word in re.split(r"[,\s]+", text):
        slug = slugify(word)[:50]
        if slug and slug not in tags:
            tags.append(slug)
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags, please.", code="tags")
    return tags


def tags_get_or_create(names: Iterable[str]) -> list[Tag]:
    return [Tag.objects.get_or_create(name=name)[0] for name in names]


def card_body(text: str) -> str:
    """A README's Markdown without its YAML front matter (metadata for machines)."""
    return FRONT_MATTER.sub("", text, count=1).strip()


def commit_id(adapter: Adapter, number: int, blobs: Mapping[str, str]) -> str:
    """A stable 40-hex revision id from the adapter, version number and file contents."""
    lines = [f"adapter {adapter.pk}", f"version {number}"]
    lines += [f"{filename} {sha}" for filename, sha in sorted(blobs.items())]
    return hashlib.sha1("\n".join(lines).encode(), usedforsecurity=False).hexdigest()


def _version_create(
    adapter: Adapter, meta: AdapterMeta, files: Mapping[str, FileLike], *, user, message: str
) -> AdapterVersion:
    """Store the files and add the version; removes files it stored if anything fails."""
    written: list[str] = []
    try:
        with transaction.atomic():
            files_quota_check(adapter.owner_id, files)
            blobs = {}
            for filename, f in files.items():
                blob, name = blob_store(f)
                if name:
                    written.append(name)
                blobs[filename] = blob
            current = adapter.current_version
            if current is not None:
                previous = dict(current.files.values_list("filename", "blob_id"))
                if previous == {fn: b.sha256 for fn, b in blobs.items()}:
                    raise ValidationError(
                        f"These files are identical to the current version (v{current.number}).",
                        code="identical",
                    )
            number = (
                adapter.versions.order_by("-number").values_list("number", flat=True).first() or 0
            ) + 1
            version = AdapterVersion.objects.create(
                adapter=adapter,
                number=number,
                commit=commit_id(adapter, number, {fn: b.sha256 for fn, b in blobs.items()}),
                message=message or f"Version {number}",
                created_by=user,
                peft_type=meta.peft_type,
                r=meta.r,
                lora_alpha=meta.lora_alpha,
                target_modules=meta.target_modules,
                dtype=meta.dtype,
                param_count=meta.param_count,
                config=meta.config,
            )
            AdapterFile.objects.bulk_create(
                AdapterFile(version=version, filename=fn, blob=blob) for fn, blob in blobs.items()
            )
            adapter.current_version = version
            adapter.save(update_fields=["current_version", "updated"])
            adapters_reindex(Adapter.objects.filter(pk=adapter.pk))
    except BaseException:
        storage_discard(written)
        raise
    return version
