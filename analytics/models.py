"""Models of analytics; each model's docstring defines its domain term.

Every table here is a *daily rollup*: one row per scope (the whole desk, an agent, an AI
model, an article, a search query) and local day, in ``settings.ANALYTICS_TIME_ZONE``.
Rows are written only by ``analytics.services.rollup_day``, which recomputes a day from
the tickets, messages and events in SQL and upserts it: re-running a day gives the same
rows. Dashboards and the API read these tables, never the raw ones.
"""

from django.conf import settings
from django.db import models


class Rollup(models.Model):
    """Common to every rollup: the local day it covers and when it was computed."""

    day = models.DateField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["day"]


class DailyOverview(Rollup):
    """The whole desk on one day.

    Opened: tickets created that day (also by channel: portal, email, chat, API).
    Resolved / escalated / reopened: tickets with such an event that day (each ticket
    once). AI resolved: resolved that day by the AI agent, without a person. Backlog:
    tickets open at the end of the day. SLA breaches: tickets whose first missed due
    time (first response, next response or resolution, in business time) fell that
    day. Deflection: signed-in help-center searches not followed by a ticket from the
    same person within 24 hours, and AI answers (resolutions) not escalated to a person
    within 24 hours.
    """

    tickets_opened = models.PositiveIntegerField(default=0)
    # The day's openings by channel (they add up to tickets_opened).
    opened_web = models.PositiveIntegerField("opened on the portal", default=0)
    opened_email = models.PositiveIntegerField("opened by email", default=0)
    opened_chat = models.PositiveIntegerField("opened in the chat", default=0)
    opened_api = models.PositiveIntegerField("opened through the API", default=0)
    tickets_resolved = models.PositiveIntegerField(default=0)
    tickets_escalated = models.PositiveIntegerField(default=0)
    tickets_reopened = models.PositiveIntegerField(default=0)
    ai_resolved = models.PositiveIntegerField(default=0)
    backlog = models.PositiveIntegerField(default=0)
    first_responses = models.PositiveIntegerField(default=0)
    median_first_response_seconds = models.FloatField(null=True, blank=True)
    median_resolution_seconds = models.FloatField(null=True, blank=True)
    csat_count = models.PositiveIntegerField(default=0)
    csat_average = models.FloatField(null=True, blank=True)
    ai_requests = models.PositiveIntegerField(default=0)
    ai_cost_usd = models.DecimalField(
        max_digits=12, decimal_places=6, default=0, help_text="Analyses and copilot calls."
    )
    copilot_requests = models.PositiveIntegerField(default=0)
    copilot_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    sla_breaches = models.PositiveIntegerField(default=0)
    searches = models.PositiveIntegerField(default=0)
    searches_signed_in = models.PositiveIntegerField(default=0)
    searches_deflected = models.PositiveIntegerField(default=0)
    ai_answers = models.PositiveIntegerField(default=0)
    ai_answers_deflected = models.PositiveIntegerField(default=0)

    class Meta(Rollup.Meta):
        constraints = [models.UniqueConstraint(fields=["day"], name="one_overview_per_day")]

    def __str__(self) -> str:
        return f"overview {self.day}"


class AgentPerformance(Rollup):
    """One human agent on one day.

    Handled: tickets the agent replied to publicly. Resolved / escalated further: tickets
    the agent resolved / handed on that day. First response: from the hand-over to a person
    (the ticket's first escalation, else its creation) to the agent's first public reply on
    that ticket, counted on the day of the reply. Resolution: from the ticket's creation to
    the agent's resolution. CSAT: ratings given that day on tickets the agent resolved.
    Quality score (0–100): the mean of the CSAT (1→0, 5→100) and the share of the agent's
    resolutions that day not reopened within 7 days, over whichever of the two exist.
    """

    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="daily_performance"
    )
    tickets_handled = models.PositiveIntegerField(default=0)
    tickets_resolved = models.PositiveIntegerField(default=0)
    resolutions_kept = models.PositiveIntegerField(
        default=0, help_text="Resolutions not reopened within 7 days."
    )
    escalated_further = models.PositiveIntegerField(default=0)
    first_responses = models.PositiveIntegerField(default=0)
    avg_first_response_seconds = models.FloatField(null=True, blank=True)
    median_first_response_seconds = models.FloatField(null=True, blank=True)
    avg_resolution_seconds = models.FloatField(null=True, blank=True)
    median_resolution_seconds = models.FloatField(null=True, blank=True)
    csat_count = models.PositiveIntegerField(default=0)
    csat_average = models.FloatField(null=True, blank=True)
    training_examples_created = models.PositiveIntegerField(default=0)
    quality_score = models.FloatField(null=True, blank=True)

    class Meta(Rollup.Meta):
        constraints = [
            models.UniqueConstraint(fields=["agent", "day"], name="one_agent_row_per_day")
        ]
        indexes = [models.Index(fields=["day"], name="agentperf_day_idx")]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.day}"


class ModelPerformance(Rollup):
    """One AI model on one day, over the analyses it ran that day.

    A request is one analysis (its AI message carries model, confidence, tokens and cost).
    A successful resolution is an analysis that resolved the ticket without a person and
    was not reopened within 7 days (so a day's figure is final a week later; the nightly
    job recomputes that day again). Satisfaction: current ratings of the tickets the model
    resolved that day. Calibration: for confidence buckets 0.0–0.1 … 0.9–1.0, how many
    analyses and how many of them were successful resolutions.
    """

    ai_model = models.CharField(max_length=100)
    requests = models.PositiveIntegerField(default=0)
    resolutions = models.PositiveIntegerField(default=0)
    successful_resolutions = models.PositiveIntegerField(default=0)
    questions = models.PositiveIntegerField(default=0)
    escalations = models.PositiveIntegerField(default=0)
    avg_confidence = models.FloatField(null=True, blank=True)
    high_confidence = models.PositiveIntegerField(default=0, help_text="Confidence above 0.8.")
    low_confidence = models.PositiveIntegerField(default=0, help_text="Confidence below 0.5.")
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    copilot_requests = models.PositiveIntegerField(
        default=0, help_text="Agents' copilot calls (summaries, suggestions, rewrites…)."
    )
    copilot_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    avg_latency_ms = models.FloatField(null=True, blank=True)
    satisfaction_count = models.PositiveIntegerField(default=0)
    satisfaction_average = models.FloatField(null=True, blank=True)
    positive_ratings = models.PositiveIntegerField(default=0, help_text="Rated 4 or 5.")
    negative_ratings = models.PositiveIntegerField(default=0, help_text="Rated 1 or 2.")
    calibration = models.JSONField(
        default=list,
        help_text='Ten buckets by confidence: [{"bucket": 0, "count": n, "successful": s}, …].',
    )

    class Meta(Rollup.Meta):
        constraints = [
            models.UniqueConstraint(fields=["ai_model", "day"], name="one_model_row_per_day")
        ]
        indexes = [models.Index(fields=["day"], name="modelperf_day_idx")]

    def __str__(self) -> str:
        return f"{self.ai_model} {self.day}"

    @property
    def cost_per_request(self):
        return self.cost_usd / self.requests if self.requests else None


class ArticlePerformance(Rollup):
    """One help article on one day: the knowledge base's own counters for the day, plus
    how the tickets the AI answered citing it were rated (cited and rated ≤ 2 = unhelpful)."""

    article = models.ForeignKey(
        "knowledge.Article", on_delete=models.CASCADE, related_name="daily_performance"
    )
    views = models.PositiveIntegerField(default=0)
    search_impressions = models.PositiveIntegerField(default=0)
    ai_references = models.PositiveIntegerField(default=0)
    helpful_votes = models.PositiveIntegerField(default=0)
    not_helpful_votes = models.PositiveIntegerField(default=0)
    cited_rated = models.PositiveIntegerField(default=0)
    cited_rated_low = models.PositiveIntegerField(default=0)

    class Meta(Rollup.Meta):
        constraints = [
            models.UniqueConstraint(fields=["article", "day"], name="one_article_row_per_day")
        ]
        indexes = [models.Index(fields=["day"], name="articleperf_day_idx")]

    def __str__(self) -> str:
        return f"{self.article_id} {self.day}"


class SearchGap(Rollup):
    """A search (lower-cased, trimmed) that found no good result on one day: no result,
    or the best one below ``settings.ANALYTICS_GOOD_RESULT_SIMILARITY``. Content to write."""

    query = models.CharField(max_length=300)
    searches = models.PositiveIntegerField(default=0)
    best_similarity = models.FloatField(null=True, blank=True)

    class Meta(Rollup.Meta):
        constraints = [
            models.UniqueConstraint(fields=["query", "day"], name="one_gap_row_per_query_day")
        ]
        indexes = [models.Index(fields=["day"], name="searchgap_day_idx")]

    def __str__(self) -> str:
        return f"{self.query} {self.day}"


class TagDaily(Rollup):
    """One tag on one day: tickets opened that day carrying the tag now, and tickets
    with the tag resolved that day (each ticket once)."""

    tag = models.ForeignKey("support.Tag", on_delete=models.CASCADE, related_name="daily")
    tickets_opened = models.PositiveIntegerField(default=0)
    tickets_resolved = models.PositiveIntegerField(default=0)

    class Meta(Rollup.Meta):
        constraints = [models.UniqueConstraint(fields=["tag", "day"], name="one_tag_row_per_day")]
        indexes = [models.Index(fields=["day"], name="tagdaily_day_idx")]

    def __str__(self) -> str:
        return f"{self.tag_id} {self.day}"
