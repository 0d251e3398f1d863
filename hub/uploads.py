"""An upload handler that hashes each file while Django writes it to a temporary file."""

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Spools every uploaded file to disk (never memory) and records its sha256 as
    `.sha256`. Bytes past LORAHUB_MAX_FILE_BYTES are counted but not written, so an
    oversized file is refused by validation (by its `.size`) without filling the disk."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.limit = settings.LORAHUB_MAX_FILE_BYTES

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            return None
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        f = super().file_complete(file_size)
        f.sha256 = self.digest.hexdigest()
        return f
