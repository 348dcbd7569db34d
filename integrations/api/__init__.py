"""REST API of integrations: serializers, views and urls (thin)."""
