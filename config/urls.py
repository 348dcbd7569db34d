"""Root URLs: portal pages, health, metrics, accounts, admin and the REST API with its schema."""

from allauth.account import views as allauth_views
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from config import health, metrics_view
from config.schema import SchemaView
from support import views as support_views

admin.site.site_header = "Helpdesk agent workspace"
admin.site.site_title = "Helpdesk admin"
admin.site.index_title = "Queues, tickets and knowledge"

# A database outage met outside a view (a middleware, the 404 page) answers 503 as well;
# error pages give back the connection they used (config.middleware).
handler400 = "config.middleware.bad_request"
handler403 = "config.middleware.permission_denied"
handler404 = "config.middleware.page_not_found"
handler500 = "config.middleware.server_error"

api_urlpatterns = [
    # bugfix first: it answers POST tickets/<reference>/github/ on support's resource.
    path("", include("bugfix.api.urls")),
    path("", include("support.api.urls")),
    path("", include("knowledge.api.urls")),
    path("", include("feedback.api.urls")),
    path("automation/", include("automation.api.urls")),
    path("analytics/", include("analytics.api.urls")),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    # The split view serves its settings as a script file: no inline script under our CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("", support_views.home, name="home"),
    path("", include("support.urls")),
    path("help/", include("knowledge.urls")),
    path("roadmap/", include("feedback.urls")),
    path("dashboards/", include("analytics.urls")),
    path("", include("bugfix.urls")),  # GitHub's webhook: /integrations/github/webhook/
    path("email/anymail/", include("anymail.urls")),  # provider inbound + tracking webhooks
    path("health/", health.liveness, name="health"),
    path("health/ready/", health.readiness, name="health-ready"),
    # Prometheus (token or allowed networks only; config.metrics_view).
    path("metrics", metrics_view.metrics_endpoint, name="metrics"),
    # django-allauth: sign-in, sign-up, verification, reset, email change, two-factor.
    path("accounts/", include("allauth.urls")),
    # The names used before allauth ({% url 'login' %}, LOGIN_URL), same addresses.
    path("accounts/login/", allauth_views.login, name="login"),
    path("accounts/logout/", allauth_views.logout, name="logout"),
    # Admin's own login form is bypassed: staff sign in through allauth (lockout, TOTP).
    path("admin/login/", support_views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/", include(api_urlpatterns)),
]
