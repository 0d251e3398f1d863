"""Xet routes: the token endpoints beside the Hub API's, the CAS under /xet/."""

from django.urls import path

from . import views

repo = "api/models/<str:owner>/<str:name>"

urlpatterns = [
    path(f"{repo}/xet-write-token/<str:revision>", views.write_token, name="xet_write_token"),
    path(f"{repo}/xet-read-token/<str:revision>", views.read_token, name="xet_read_token"),
    path("xet/v1/xorbs/<str:prefix>/<str:xorb_hash>", views.xorb_upload, name="xet_xorb"),
    path("xet/v1/shards", views.shard_upload, name="xet_shard"),
    path("xet/v2/shards", views.shard_upload_v2),
    path("xet/v1/chunks/<str:prefix>/<str:chunk_hash>", views.chunk_dedup),
    path("xet/v1/reconstructions/<str:file_hash>", views.reconstruction),
    path("xet/v2/reconstructions/<str:file_hash>", views.reconstruction),
    path("xet/v1/telemetry", views.telemetry),
]
