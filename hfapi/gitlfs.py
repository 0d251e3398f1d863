"""Git and Git LFS identifiers the Hub protocol expects, derived from a file's sha256.

Every adapter file is presented as an LFS file: its git blob is the LFS pointer, whose
id follows from (sha256, size) alone, so no file is read to answer a listing.
"""

import hashlib

# git's id for the empty tree: the head of a repository that has no version yet.
EMPTY_TREE_SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def lfs_pointer(sha256: str, size: int) -> bytes:
    spec = "version https://git-lfs.github.com/spec/v1"
    return f"{spec}\noid sha256:{sha256}\nsize {size}\n".encode()


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def tree_entry(path: str, size: int, sha256: str) -> dict:
    """A file as `/tree` lists it and `RepoFile` parses it."""
    pointer = lfs_pointer(sha256, size)
    return {
        "type": "file",
        "path": path,
        "size": size,
        "oid": git_blob_id(pointer),
        "lfs": {"oid": sha256, "size": size, "pointerSize": len(pointer)},
    }


def sibling(path: str, size: int, sha256: str) -> dict:
    """A file as `model_info(...).siblings` parses it."""
    pointer = lfs_pointer(sha256, size)
    return {
        "rfilename": path,
        "size": size,
        "blobId": git_blob_id(pointer),
        "lfs": {"size": size, "sha256": sha256, "pointerSize": len(pointer)},
    }


def folder_id(path: str, commit: str) -> str:
    """A stable id for a folder in a listing (the client only displays it)."""
    return hashlib.sha1(f"tree {commit} {path}".encode(), usedforsecurity=False).hexdigest()
