"""Articles saved before external images became links (issue 16) are rendered again, so
none of them keeps loading a third party's image; the text itself does not change."""

from django.db import migrations


def rerender(apps, schema_editor):
    from core.markdown import render_markdown

    Article = apps.get_model("knowledge", "Article")
    for article in Article.objects.only("pk", "body").iterator(chunk_size=200):
        Article.objects.filter(pk=article.pk).update(body_html=render_markdown(article.body))


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0004_searchlog_user")]

    operations = [migrations.RunPython(rerender, migrations.RunPython.noop)]
