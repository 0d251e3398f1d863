from django.urls import path

from .views import catalog, files, manage

app_name = "hub"
# Fixed prefixes first: an owner can never be named like one (hub.services.namespaces.SITE_PATHS).
urlpatterns = [
    path("", catalog.home, name="home"),
    path("adapters/", catalog.adapter_list, name="adapter_list"),
    path("new/", manage.adapter_new, name="adapter_new"),
    path("base-models/", catalog.base_model_list, name="base_model_list"),
    path("base-models/<path:identifier>", catalog.base_model_detail, name="base_model_detail"),
    path("<str:owner>/", catalog.user_detail, name="user_detail"),
    path("<str:owner>/<str:name>", catalog.adapter_detail, name="adapter_detail"),
    path(
        "<str:owner>/<str:name>/tree/<str:revision>",
        catalog.adapter_detail,
        name="adapter_revision",
    ),
    path(
        "<str:owner>/<str:name>/resolve/<str:revision>/<path:filename>",
        files.adapter_resolve,
        name="adapter_resolve",
    ),
    path(
        "<str:owner>/<str:name>/archive/<str:revision>.zip",
        files.adapter_archive,
        name="adapter_archive",
    ),
    path("<str:owner>/<str:name>/upload", manage.adapter_new_version, name="adapter_new_version"),
    path("<str:owner>/<str:name>/edit", manage.adapter_edit, name="adapter_edit"),
    path("<str:owner>/<str:name>/delete", manage.adapter_remove, name="adapter_delete"),
]
