from django.urls import path

from support.api import views

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path("me/", views.MeView.as_view(), name="api-me"),
]
