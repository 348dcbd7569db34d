"""REST API of knowledge base: serializers, views and urls (thin)."""
