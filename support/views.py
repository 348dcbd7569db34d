"""Customer portal pages (server-rendered, thin)."""

from django.shortcuts import render


def home(request):
    return render(request, "support/home.html")
