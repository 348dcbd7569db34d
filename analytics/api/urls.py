from django.urls import path

from analytics.api import views

urlpatterns = [
    path("overview/", views.OverviewView.as_view(), name="api-analytics-overview"),
    path("models/", views.ModelsView.as_view(), name="api-analytics-models"),
    path("agents/", views.AgentsView.as_view(), name="api-analytics-agents"),
    path("knowledge/", views.KnowledgeView.as_view(), name="api-analytics-knowledge"),
]
