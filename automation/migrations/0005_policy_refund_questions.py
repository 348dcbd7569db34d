"""The shipped billing rule of the always-escalate policy, split as triage's policy now is
(``support.ai.triage.POLICY_RULES``): a billing dispute (chargeback, charged twice,
overcharged) always goes to people; a refund request too, unless it is a question about
refunds (the refund policy, a refund already asked for that has not arrived), which the
help center answers. Measured on the dev labels: the old pattern fired on 69 Bitext
questions about the money-back policy and 27 BANKING77 questions about a refund not
showing up.

Only rules still as shipped are changed: a rule an admin edited is left alone (the new
refund rules are then not added either, the admin's version being the policy).
"""

from django.db import migrations

OLD = (
    "\\b((want|need|would like|request(ing)?|get|give me|demand|issue|expect)( a| my| the)? "
    "(full |partial )?refund|refund (me|my|the|this|it|us)\\b|money back|chargeback|charge "
    "?back|dispute|charged (me )?(twice|two times|double)|double[- ]charged?|overcharg)"
)
OLD_WHY = "refund request or billing dispute"

# support.ai.triage.POLICY_RULES when this migration was written.
DISPUTE = (
    "\\b(chargeback|charge ?back|dispute|charged (me )?(twice|two times|double)|"
    "double[- ]charged?|overcharg)"
)
REFUND = (
    "\\b((want|need|would like|request(ing)?|get|give me|demand|issue|expect)( a| my| the)? "
    "(full |partial )?refund|refund (me|my|the|this|it|us)\\b|money back(?! (polic|guarantee)))"
)
REFUND_QUESTION = (
    "\\b((refund|money[- ]back|return) polic|in what (cases|situations)|under what "
    "circumstances|how long|when (can|will|do|should|would) (i|we)|supposed? to|"
    "(not|n't|never) (showing|show|shown|reach|reached|arriv|appear|received?|see)|"
    "still (hasn'?t|haven'?t|not|no)|where is my refund|status of (my|the) refund|"
    "track(ing)? (my|the|a) refund|(policy|policies) (on|for|about) refunds?)"
)
NOT_WITH_PEOPLE = {"field": "status", "operator": "is_not", "value": "escalated"}
TRIGGERS = {
    "ticket_created": ("new ticket", "text"),
    "customer_message": ("customer message", "message"),
}


def _conditions(trigger, *conditions):
    field = TRIGGERS[trigger][1]
    items = [{"field": field, **c} for c in conditions]
    if trigger == "customer_message":
        items = [NOT_WITH_PEOPLE, *items]
    return {"match": "all", "conditions": items}


def split(apps, schema_editor):
    Rule = apps.get_model("automation", "Rule")
    for trigger, (door, _) in TRIGGERS.items():
        old = Rule.objects.filter(
            is_default=True, name=f"Always escalate: {OLD_WHY} ({door})", trigger=trigger
        ).first()
        if old is None or old.conditions != _conditions(
            trigger, {"operator": "matches", "value": OLD}
        ):
            continue
        name = f"Always escalate: billing dispute ({door})"
        if Rule.objects.filter(name=name).exists():  # split before: this is a copy shipped again
            old.delete()
            continue
        old.name = name
        old.conditions = _conditions(trigger, {"operator": "matches", "value": DISPUTE})
        old.actions = [
            {**a, "reason": "Always handled by people: billing dispute."} for a in old.actions
        ]
        old.save(update_fields=["name", "conditions", "actions"])
        Rule.objects.get_or_create(
            name=f"Always escalate: refund request ({door})",
            defaults={
                "description": old.description,
                "position": old.position,
                "trigger": trigger,
                "conditions": _conditions(
                    trigger,
                    {"operator": "matches", "value": REFUND},
                    {"operator": "not_matches", "value": REFUND_QUESTION},
                ),
                "actions": [
                    {**a, "reason": "Always handled by people: refund request."}
                    for a in old.actions
                ],
                "is_enabled": old.is_enabled,
                "is_default": True,
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("automation", "0004_default_rules"),
    ]

    operations = [migrations.RunPython(split, migrations.RunPython.noop)]
