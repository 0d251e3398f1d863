"""Registering a base model's files, so the Hub API serves it as a model repository.

`base_model_register` stores a `from_pretrained` folder's files as blobs (once per sha256,
like adapter files) under a BaseModel; hfapi.upstream.base_model_import first downloads the
folder from an upstream hub. Workers then fetch the model by its identifier through
this site's Hub API (composer.base_model_fetch), so no machine needs a hand-placed copy.
"""

import hashlib
import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import BaseModel, BaseModelFile
from .adapters import BASE_MODEL_ID
from .storage import blob_store, blobs_delete_unreferenced, file_sha256, storage_discard

# Weights must be safetensors: a pickle runs code when a worker loads it.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_FILES = 200


def folder_files(folder: Path) -> dict[str, Path]:
    """{relative posix path: file} of a model folder; hidden files and folders are skipped."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
            raise ValidationError(f"{relative} links outside the folder.")
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ValidationError(
                f"{relative} is a pickle file, which can run code when loaded: save the "
                "model with safetensors (save_pretrained does by default)."
            )
        files[relative.as_posix()] = path
        if len(files) > MAX_FILES:
            raise ValidationError(f"More than {MAX_FILES} files: is this a model folder?")
    if "config.json" not in files:
        raise ValidationError(f"{folder} has no config.json: not a from_pretrained folder.")
    if not any(name.endswith(".safetensors") for name in files):
        raise ValidationError(f"{folder} has no .safetensors weights.")
    return files


def files_commit(shas: dict[str, str]) -> str:
    """A 40-hex revision id for {filename: sha256}: the same files give the same id."""
    listing = "".join(f"{name}\0{sha}\n" for name, sha in sorted(shas.items()))
    return hashlib.sha1(listing.encode()).hexdigest()


def base_model_register(identifier: str, folder: str | Path, *, source: str = "") -> BaseModel:
    """Create or update the base model `identifier` with the files of `folder`.

    Unchanged files keep the model's revision; a changed set replaces the old files (their
    blobs are deleted when nothing else uses them). Raises ValidationError.
    """
    if not BASE_MODEL_ID.fullmatch(identifier):
        raise ValidationError(f"{identifier!r} is not a model identifier such as org/name.")
    folder = Path(folder)
    if not folder.is_dir():
        raise ValidationError(f"{folder} is not a folder.")
    files = folder_files(folder)
    shas = {}
    for name, path in files.items():
        with open(path, "rb") as fh:
            shas[name] = file_sha256(fh)
    commit = files_commit(shas)
    architecture = ",".join(json.loads(files["config.json"].read_text()).get("architectures", []))
    written = []
    try:
        with transaction.atomic():
            base, _ = BaseModel.objects.select_for_update().get_or_create(identifier=identifier)
            if base.commit == commit:
                return base
            old = list(base.files.values_list("blob_id", flat=True))
            base.files.all().delete()
            for name, path in files.items():
                blob, stored = blob_store(path)
                if stored:
                    written.append(stored)
                BaseModelFile.objects.create(base_model=base, filename=name, blob=blob)
            base.commit = commit
            base.source = source or str(folder)
            base.architecture = base.architecture or architecture[:100]
            base.save(update_fields=["commit", "source", "architecture"])
            blobs_delete_unreferenced(old)
    except BaseException:
        storage_discard(written)
        raise
    return base
