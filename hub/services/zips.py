"""Zip archives in and out: a guarded extractor for uploads, a streaming writer for downloads."""

import hashlib
import stat
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from .validation import check_filename, file_size

CHUNK = 1024 * 1024
# Entries that archivers add on their own; skipped rather than refused.
JUNK_NAMES = {".DS_Store", "Thumbs.db"}
JUNK_DIRS = {"__MACOSX"}


class HashedFile:
    """A path whose sha256 was computed while it was written (see hub.services.storage)."""

    def __init__(self, path: Path, sha256: str, size: int):
        self.path, self.sha256, self.size = path, sha256, size

    def __fspath__(self) -> str:
        return str(self.path)


def zip_extract(archive: BinaryIO, dest: Path) -> dict[str, HashedFile]:
    """Extract an adapter folder from a zip into `dest`, refusing anything hostile.

    Refused, with a message: entries with absolute paths, `..` or links; more than
    LORAHUB_MAX_ZIP_ENTRIES entries; files nested in more than one folder; declared or
    actual sizes over LORAHUB_MAX_FILE_BYTES; compression ratios over LORAHUB_MAX_ZIP_RATIO
    (zip bombs). Entries are streamed to disk with a cap and hashed on the way.
    Returns {filename: HashedFile} with a single top-level folder (if any) stripped.
    """
    max_bytes = settings.LORAHUB_MAX_FILE_BYTES
    max_entries = settings.LORAHUB_MAX_ZIP_ENTRIES
    max_ratio = settings.LORAHUB_MAX_ZIP_RATIO
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise ValidationError(
            "The zip file is damaged or not a zip file.", code="bad_zip"
        ) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise ValidationError(
                f"The zip has {len(infos)} entries; at most {max_entries} are accepted.",
                code="zip_entries",
            )
        members = {}
        for info in infos:
            parts = _safe_parts(info)
            if info.is_dir() or parts[-1] in JUNK_NAMES or parts[0] in JUNK_DIRS:
                continue
            if info.flag_bits & 0x1:
                raise ValidationError(f"Zip entry {info.filename!r} is encrypted.", code="bad_zip")
            members[parts] = info
        if not members:
            raise ValidationError("The zip holds no files.", code="missing")

        _check_sizes(members.values(), max_bytes, max_ratio)
        prefixes = {parts[:-1] for parts in members}
        if len(prefixes) != 1 or len(next(iter(prefixes))) > 1:
            raise ValidationError(
                "The zip must hold the adapter's files at its top level or inside a single "
                "folder (as save_pretrained writes them).",
                code="zip_path",
            )
        out = {}
        for parts, info in members.items():
            filename = parts[-1]
            check_filename(filename)
            if filename in out:
                raise ValidationError(f"The zip holds {filename} twice.", code="zip_path")
            out[filename] = _extract_one(zf, info, dest / filename, max_bytes)
        return out


def _safe_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename
    if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise ValidationError(
            f"Zip entry {name!r} has an absolute path; entries must be relative.", code="zip_path"
        )
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if not parts or ".." in parts:
        raise ValidationError(
            f"Zip entry {name!r} points outside the archive ('..'); refused.", code="zip_path"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValidationError(f"Zip entry {name!r} is a symbolic link; refused.", code="zip_path")
    return parts


def _check_sizes(infos: Iterable[zipfile.ZipInfo], max_bytes: int, max_ratio: int) -> None:
    total = 0
    for info in infos:
        if info.file_size > max_bytes:
            raise ValidationError(
                f"Zip entry {info.filename!r} expands to {filesizeformat(info.file_size)}, over "
                f"the {filesizeformat(max_bytes)} limit per file.",
                code="too_large",
            )
        # Tiny entries may compress well by nature; a high ratio on a large one is a bomb.
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > CHUNK and ratio > max_ratio:
            raise ValidationError(
                f"Zip entry {info.filename!r} expands {ratio} times (over {max_ratio}x): this "
                "looks like a zip bomb and is refused.",
                code="zip_bomb",
            )
        total += info.file_size
    if total > 2 * max_bytes + CHUNK:
        raise ValidationError(
            f"The zip expands to {filesizeformat(total)} in all, too much for an adapter.",
            code="zip_bomb",
        )


def _extract_one(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, max_bytes: int
) -> HashedFile:
    """Stream one entry to disk, stopping as soon as it exceeds what it declared."""
    limit = min(info.file_size, max_bytes)
    digest = hashlib.sha256()
    written = 0
    try:
        with zf.open(info) as src, open(target, "wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise ValidationError(
                        f"Zip entry {info.filename!r} expands beyond its declared size: a zip "
                        "bomb or a damaged archive; refused.",
                        code="zip_bomb",
                    )
                digest.update(chunk)
                dst.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValidationError(
            f"Zip entry {info.filename!r} could not be read ({exc}).", code="bad_zip"
        ) from None
    return HashedFile(target, digest.hexdigest(), written)


class _Sink:
    """A write-only file that hands what was written to a generator, chunk by chunk."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def zip_stream(
    entries: Iterable[tuple[str, int, BinaryIO]],
    date_time: tuple[int, int, int, int, int, int] = (2020, 1, 1, 0, 0, 0),
) -> Iterator[bytes]:
    """Yield a zip archive of (arcname, size, open file) entries without holding it in memory.

    Entries are stored uncompressed (safetensors weights hardly compress) and written to a
    non-seekable sink, so zipfile emits data descriptors; memory stays at about one chunk.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for arcname, size, fileobj in entries:
            info = zipfile.ZipInfo(arcname, date_time=date_time)
            info.external_attr = 0o644 << 16
            info.file_size = size
            with fileobj, zf.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as dst:
                while chunk := fileobj.read(CHUNK):
                    dst.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def files_from_upload(uploaded: Iterable, workdir: Path) -> dict:
    """{filename: file} from what a form received: the adapter's files, or one zip of them
    (extracted into `workdir`). Names are the files' own names, without folders."""
    uploaded = list(uploaded)
    names = [PurePosixPath(f.name.replace("\\", "/")).name for f in uploaded]
    zips = [f for f, name in zip(uploaded, names, strict=True) if name.lower().endswith(".zip")]
    if zips:
        if len(uploaded) > 1:
            raise ValidationError(
                "Upload either one zip of the adapter folder or its files, not both.",
                code="zip_entries",
            )
        size, max_bytes = file_size(zips[0]), settings.LORAHUB_MAX_FILE_BYTES
        if size > max_bytes:
            raise ValidationError(
                f"{names[0]} is {filesizeformat(size)}, larger than the "
                f"{filesizeformat(max_bytes)} limit per file.",
                code="too_large",
            )
        return zip_extract(zips[0], workdir)
    files = {}
    for f, name in zip(uploaded, names, strict=True):
        if name in files:
            raise ValidationError(f"{name} was chosen twice.", code="unexpected_file")
        files[name] = f
    return files
