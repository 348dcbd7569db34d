from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("ai/", views.ai_models, name="models"),
    path("agents/", views.agents, name="agents"),
    path("knowledge/", views.knowledge, name="knowledge"),
]
