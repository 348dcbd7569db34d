"""REST API of feedback: serializers, views and urls (thin)."""
