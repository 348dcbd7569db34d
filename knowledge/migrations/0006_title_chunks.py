"""Articles embedded before their title became a chunk of its own (issue 22) are due to
be embedded again: marked stale, so ``manage.py reembed_articles`` picks them up. Until
then search works as before, on their passages alone."""

from django.db import migrations


def mark_stale(apps, schema_editor):
    Article = apps.get_model("knowledge", "Article")
    Article.objects.exclude(embedded_hash="").update(embedded_hash="before-title-chunks")


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0005_rerender_article_html")]

    operations = [migrations.RunPython(mark_stale, migrations.RunPython.noop)]
