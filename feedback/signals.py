"""When an organization's MRR changes, by any path (admin, API, shell, import), its votes
are reweighed by a task scheduled through the outbox (run after commit)."""

from __future__ import annotations

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from core.outbox import schedule_after_commit
from support.models import Organization


@receiver(pre_save, sender=Organization, dispatch_uid="feedback.organization_mrr_before")
def _remember_mrr(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        instance._mrr_before = None
        return
    instance._mrr_before = (
        Organization.objects.filter(pk=instance.pk).values_list("mrr", flat=True).first()
    )


@receiver(post_save, sender=Organization, dispatch_uid="feedback.organization_mrr_after")
def _reweigh_on_mrr_change(sender, instance, created, raw=False, **kwargs):
    before = getattr(instance, "_mrr_before", None)
    if raw or created or before is None or before == instance.mrr:
        return
    schedule_after_commit("feedback.tasks.reweigh_organization_votes", instance.pk)
