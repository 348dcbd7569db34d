from django.urls import path

from knowledge import views

app_name = "knowledge"

urlpatterns = [
    path("", views.index, name="index"),
    path("search/", views.search, name="search"),
    path("c/<slug:slug>/", views.category, name="category"),
    path("a/<slug:slug>/", views.article, name="article"),
    path("a/<slug:slug>/vote/", views.vote, name="vote"),
]
