"""REST API of bugfix: serializers, views and urls (thin)."""
