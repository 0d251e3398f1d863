"""Accounts, outside the hub namespace so that settings.LOGIN_URL = "login" resolves."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .forms import LoginForm
from .views.accounts import signup

urlpatterns = [
    path("signup/", signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=LoginForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
