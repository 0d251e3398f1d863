"""Reading stored files in a web process without copying them: ranged and streamed reads.

django-storages' S3File downloads the whole object into a temporary file (in
FILE_UPLOAD_TEMP_DIR) on its first read: a header check of a 600 MB file copied 600 MB,
and each slow reader of an archive held a full copy of every file in it. A `StoredFile`
asks the bucket for the bytes it needs instead (HTTP Range) and streams a sequential read
through the S3 client's response body, one chunk at a time: no temporary file, memory
bounded by the largest single read.
"""

import io
from typing import BinaryIO

from botocore.exceptions import BotoCoreError
from django.core.files.storage import Storage, default_storage
from storages.utils import clean_name

from ..models import Blob


class StoredFile(io.RawIOBase):
    """A read-only, seekable view of an object in an S3 bucket.

    A read at a new position fetches exactly its bytes (one ranged GET: a header costs what
    it holds). A read that continues where the previous one ended opens one streamed GET
    from there to the end, which the following reads consume in order; a seek elsewhere
    drops it. So a whole sequential read is two requests (one more if the store drops the
    stream), never more than one read's bytes in memory.
    """

    def __init__(self, storage: Storage, name: str, size: int):
        self.name, self.size = name, size
        self._client = storage.bucket.meta.client
        self._bucket = storage.bucket_name
        self._key = storage._normalize_name(clean_name(name))
        self._position = 0
        self._ended_at: int | None = None  # where the previous read stopped
        self._body = None  # the open streamed GET, positioned at self._position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if start + offset < 0:
            raise ValueError(f"negative seek position {start + offset}")
        if start + offset != self._position:
            self._drop_body()
        self._position = start + offset
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        left = self.size - self._position
        wanted = left if size is None or size < 0 else min(size, left)
        if wanted <= 0:
            return b""
        if self._body is None and self._position == self._ended_at:
            self._body = self._get(f"bytes={self._position}-")
        if self._body is not None:
            data = self._streamed(wanted)
        else:
            ranged = self._get(f"bytes={self._position}-{self._position + wanted - 1}")
            try:
                data = _read_exactly(ranged, wanted)
            finally:
                ranged.close()
        if len(data) < wanted:
            raise OSError(f"{self.name}: the store sent {len(data)} of {wanted} bytes")
        self._position += len(data)
        self._ended_at = self._position
        return data

    def open_now(self) -> "StoredFile":
        """Open the streamed GET from the current position now: a response built on this
        file then fails before it starts (503) when the store is away, not halfway through
        a 200."""
        if self._body is None and self._position < self.size:
            self._body = self._get(f"bytes={self._position}-")
            self._ended_at = self._position
        return self

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _streamed(self, wanted: int) -> bytes:
        """`wanted` bytes from the open body. A body that breaks or ends early (a store may
        drop a connection left idle while a client reads slowly) is opened again, once,
        where it stopped."""
        parts, got, resumed = [], 0, False
        while got < wanted:
            try:
                part = self._body.read(wanted - got)
            except (BotoCoreError, OSError):
                part = b""
            if not part:
                if resumed:
                    break
                resumed = True
                self._drop_body()
                self._body = self._get(f"bytes={self._position + got}-")
                continue
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def _get(self, byte_range: str):
        return self._client.get_object(Bucket=self._bucket, Key=self._key, Range=byte_range)["Body"]

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()  # an unfinished body closes its connection: nothing more comes
            self._body = None


def _read_exactly(body, size: int) -> bytes:
    parts, got = [], 0
    while got < size and (part := body.read(size - got)):
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def stored_open(name: str, size: int, storage: Storage = default_storage) -> BinaryIO:
    """The stored file `name` (of `size` bytes), open for reading without a local copy: a
    StoredFile on a bucket, the file itself on the file system."""
    if hasattr(storage, "bucket"):
        return StoredFile(storage, name, size)
    return storage.open(name, "rb")


def blob_reader(blob: Blob, *, now=False) -> BinaryIO:
    """The blob's file, open for reading; `now`: reaching the store now (see
    StoredFile.open_now), for a response that streams it."""
    reader = stored_open(blob.storage_name, blob.size)
    return reader.open_now() if now and isinstance(reader, StoredFile) else reader
