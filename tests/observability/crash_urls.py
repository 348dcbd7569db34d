"""A URL whose view fails, for the Sentry test (used in a child process only)."""

from django.urls import path


def crash(request):
    return 1 / 0


urlpatterns = [path("crash/", crash)]
