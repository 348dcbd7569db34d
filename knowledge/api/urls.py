from django.urls import path

from knowledge.api import views

articles = views.ArticleViewSet
categories = views.CategoryViewSet

urlpatterns = [
    path("search/", views.SearchView.as_view(), name="api-search"),
    path(
        "categories/",
        categories.as_view({"get": "list", "post": "create"}),
        name="api-category-list",
    ),
    path(
        "categories/<slug:slug>/",
        categories.as_view(
            {"get": "retrieve", "patch": "partial_update", "put": "update", "delete": "destroy"}
        ),
        name="api-category-detail",
    ),
    path("articles/", articles.as_view({"get": "list", "post": "create"}), name="api-article-list"),
    path(
        "articles/<slug:slug>/",
        articles.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="api-article-detail",
    ),
    path(
        "articles/<slug:slug>/publish/",
        articles.as_view({"post": "publish"}),
        name="api-article-publish",
    ),
    path(
        "articles/<slug:slug>/archive/",
        articles.as_view({"post": "archive"}),
        name="api-article-archive",
    ),
]
