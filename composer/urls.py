from django.urls import path

from . import views, views_try

app_name = "composer"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/<slug:kind>/", views.job_new, name="new"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/status/", views.job_status, name="status"),
    path("<int:pk>/cancel/", views.job_cancel, name="cancel"),
    path("<int:pk>/again/", views.job_again, name="again"),
    path("<int:pk>/download/", views.job_download, name="download"),
    path("<int:pk>/publish/", views.job_publish_view, name="publish"),
    path("try/", views_try.trial_new, name="trial_new"),
    path("try/<int:pk>/", views_try.trial_detail, name="trial"),
]
