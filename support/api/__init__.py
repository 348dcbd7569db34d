"""REST API of support: serializers, views and urls (thin)."""
