from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("jobs/", include("composer.urls")),
    path("accounts/", include("hub.urls_accounts")),
    # Before the catalog: the Hub API's /api/..., /<owner>/<name>.git/... and settings pages.
    path("", include("hfapi.urls")),
    path("", include("hub.urls")),
]

handler404 = "hub.views.errors.page_not_found"
handler500 = "hub.views.errors.server_error"
