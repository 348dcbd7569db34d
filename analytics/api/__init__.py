"""REST API of analytics: serializers, views and urls (thin)."""
