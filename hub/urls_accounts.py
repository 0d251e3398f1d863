"""Accounts, outside the hub namespace so that settings.LOGIN_URL = "login" resolves."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .views.accounts import LoginView, signup

urlpatterns = [
    path("signup/", signup, name="signup"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
