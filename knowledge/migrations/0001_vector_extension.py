"""Enable pgvector, which article chunk embeddings need (a superuser runs this once)."""

from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [VectorExtension()]
