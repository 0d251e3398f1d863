"""The Hugging Face Hub HTTP API, as `huggingface_hub` calls it, plus the token settings.

Included at the site root before the catalog's URLs: the client builds `{endpoint}/api/...`,
`{endpoint}/{owner}/{name}.git/info/lfs/...` and `{endpoint}/{owner}/{name}/resolve/...`.
"""

from django.urls import include, path, register_converter

from . import views_base_models as base_models
from . import views_lfs, views_read, views_resolve, views_tokens, views_upstream, views_write

app_name = "hfapi"
register_converter(base_models.BaseModelId, "base")

repo = "api/models/<str:owner>/<str:name>"

urlpatterns = [
    path("settings/tokens/", views_tokens.token_list, name="tokens"),
    path("settings/tokens/<int:token_id>/revoke/", views_tokens.token_delete, name="token_delete"),
    # "new" is a reserved user name, so this never hides an adapter page.
    path("new/from-hugging-face/", views_upstream.import_adapter, name="import"),
    path("<str:owner>/<str:name>/push-to-hub", views_upstream.push_adapter, name="push"),
    path("new/transfers/<int:pk>/", views_upstream.transfer_detail, name="transfer"),
    # Registered base models by identifier; only their identifiers match these routes.
    path("api/models/<base:base>", base_models.model_info, name="base_info"),
    path("api/models/<base:base>/revision/<str:revision>", base_models.model_info),
    path("api/models/<base:base>/tree/<str:revision>", base_models.tree),
    path("api/models/<base:base>/tree/<str:revision>/<path:subpath>", base_models.tree),
    path("<base:base>/resolve/<str:revision>/<path:filename>", base_models.resolve),
    # Read
    path("api/whoami-v2", views_read.whoami, name="whoami"),
    path("api/models", views_read.model_list, name="model_list"),
    path(f"{repo}", views_read.model_info, name="model_info"),
    path(f"{repo}/revision/<str:revision>", views_read.model_info, name="model_info_rev"),
    path(f"{repo}/tree/<str:revision>", views_read.tree, name="tree"),
    path(f"{repo}/tree/<str:revision>/<path:subpath>", views_read.tree, name="tree_path"),
    path(f"{repo}/commits/<str:revision>", views_read.commits, name="commits"),
    path(f"{repo}/refs", views_read.refs, name="refs"),
    # Write
    path("api/repos/create", views_write.repo_create, name="repo_create"),
    path("api/repos/delete", views_write.repo_delete, name="repo_delete"),
    path("api/validate-yaml", views_write.validate_yaml, name="validate_yaml"),
    path(f"{repo}/preupload/<str:revision>", views_write.preupload, name="preupload"),
    path(f"{repo}/commit/<str:revision>", views_write.commit, name="commit"),
    # Xet: token endpoints and the CAS that hf_xet uploads large files to.
    path("", include("hfapi.xet.urls")),
    # Git LFS batch API (basic transfer): the upload and verify links are signed.
    path("<str:owner>/<str:name>.git/info/lfs/objects/batch", views_lfs.batch, name="lfs_batch"),
    path("api/lfs/upload/<str:ticket>", views_lfs.upload, name="lfs_upload"),
    path("api/lfs/verify/<str:ticket>", views_lfs.verify, name="lfs_verify"),
    # Downloads: the catalog's resolve view behind the Hub's headers, HEAD and Range.
    path(
        "<str:owner>/<str:name>/resolve/<str:revision>/<path:filename>",
        views_resolve.resolve,
        name="resolve",
    ),
]
