from django.urls import path

from domains.tenants import apis

urlpatterns = [
    path("token/", apis.TokenObtainApi.as_view(), name="auth-token"),
    path("token/refresh/", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("me/", apis.MeApi.as_view(), name="auth-me"),
    path("password/", apis.PasswordChangeApi.as_view(), name="auth-password"),
]
