"""Xet storage for `huggingface_hub` uploads: token endpoints and the CAS calls hf_xet makes.

hf_xet cuts each file into content-defined chunks, packs them into xorbs and describes the
file in a shard. This hub verifies every xorb against its hash, and on a shard rebuilds each
file from the stored xorbs into the uploader's staged LFS objects (by sha256), so the commit
that follows takes the same path as an LFS upload and every download stays a plain file.
"""
