from django.core.management.base import BaseCommand
from tqdm import tqdm

from integrations.embeddings import get_provider
from knowledge import services
from knowledge.models import Article


class Command(BaseCommand):
    help = (
        "Embed every published article whose text or embedding model changed "
        "(all of them with --force), in this process, with a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="re-embed unchanged ones too")

    def handle(self, *args, force=False, **options):
        provider = get_provider()
        ids = list(
            Article.objects.filter(status=Article.Status.PUBLISHED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        outcomes: dict[str, int] = {}
        for article_id in tqdm(
            ids,
            desc=f"embedding with {provider.model_name}",
            unit="article",
            disable=options["verbosity"] == 0,
        ):
            outcome = services.article_embed(article_id=article_id, force=force, provider=provider)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        summary = ", ".join(f"{n} {name}" for name, n in sorted(outcomes.items())) or "nothing"
        self.stdout.write(self.style.SUCCESS(f"{len(ids)} published articles: {summary}."))
