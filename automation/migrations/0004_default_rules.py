"""The rules shipped with the helpdesk (``is_default``: enabled, editable, deletable).

- "Remind after 3 days awaiting the customer": a reply from the team asking whether the
  customer still needs help, when a ticket has awaited the customer for 3 days; once per
  wait (the rule counts from the moment the ticket entered the status).
- "Close 7 days after resolution": a resolved ticket nobody reopened is closed.
- The always-escalate policy of triage (``support.ai.triage.POLICY_RULES``: refund or
  billing dispute, legal, security, account deletion, asking for a person), as rules on a
  new ticket and on a customer's message: the ticket goes to people at once, routed by
  the topic. Triage keeps its own check (rules can be edited or disabled).
"""

from django.db import migrations

# support.ai.triage.POLICY_RULES when these rules were shipped: (topic, why, pattern).
POLICY = [
    (
        "billing",
        "refund request or billing dispute",
        "\\b((want|need|would like|request(ing)?|get|give me|demand|issue|expect)( a| my| the)? "
        "(full |partial )?refund|refund (me|my|the|this|it|us)\\b|money back|chargeback|charge "
        "?back|dispute|charged (me )?(twice|two times|double)|double[- ]charged?|overcharg)",
    ),
    (
        "legal",
        "legal matter",
        "\\b(lawyer|attorney|legal action|lawsuit|sue\\b|suing|court|subpoena|gdpr "
        "(request|complaint)|data protection authority)",
    ),
    (
        "security",
        "security concern",
        "\\b(hack(ed|er)?|security "
        "(issue|breach|vulnerabilit)|vulnerabilit|breach|phishing|fraud|unauthori[sz]ed|compromised|stolen|account "
        "takeover|suspicious (login|activity|transaction|charge)|did ?n[o']t (make|authori[sz]e) "
        "(this|that|the) (payment|transaction|charge))",
    ),
    (
        "account",
        "account deletion",
        "\\b(delete|close|remove|erase|terminate) (my|our|the) (whole )?(account|data|profile)",
    ),
    (
        "human",
        "asked for a person",
        "\\b(speak|talk|chat) (to|with) (a |an )?(human|person|real "
        "person|agent|someone|representative|manager)|\\b(human|live) (agent|support|being)|\\breal "
        "person\\b|\\brepresentative\\b",
    ),
]

REMINDER_BODY = (
    "Hi {{ customer.first_name }},\n\n"
    "We are still waiting for your reply about “{{ ticket.subject }}” "
    "({{ ticket.reference }}). If you still need help, just answer this message and we "
    "will pick it up from there. If everything is sorted, tell us and we will close the "
    "ticket."
)

NOT_WITH_PEOPLE = {"field": "status", "operator": "is_not", "value": "escalated"}


def default_rules():
    rules = [
        {
            "name": "Remind after 3 days awaiting the customer",
            "description": "Asks the customer, once per wait, whether they still need help.",
            "position": 10,
            "trigger": "time_elapsed",
            "since": "status_entered",
            "delay": 3,
            "delay_unit": "days",
            "conditions": {
                "match": "all",
                "conditions": [{"field": "status", "operator": "is", "value": "awaiting_customer"}],
            },
            "actions": [{"type": "send_reply", "body": REMINDER_BODY}],
        },
        {
            "name": "Close 7 days after resolution",
            "description": "A resolved ticket the customer did not reopen is closed.",
            "position": 20,
            "trigger": "time_elapsed",
            "since": "resolved",
            "delay": 7,
            "delay_unit": "days",
            "conditions": {
                "match": "all",
                "conditions": [{"field": "status", "operator": "is", "value": "resolved"}],
            },
            "actions": [{"type": "set_status", "status": "closed"}],
        },
    ]
    for index, (topic, why, pattern) in enumerate(POLICY):
        action = {
            "type": "escalate",
            "topic": topic,
            "reason": f"Always handled by people: {why}.",
        }
        rules.append(
            {
                "name": f"Always escalate: {why} (new ticket)",
                "description": "The always-escalate policy: such tickets go to people at once.",
                "position": 50 + index,
                "trigger": "ticket_created",
                "conditions": {
                    "match": "all",
                    "conditions": [{"field": "text", "operator": "matches", "value": pattern}],
                },
                "actions": [action],
            }
        )
        rules.append(
            {
                "name": f"Always escalate: {why} (customer message)",
                "description": "The always-escalate policy, on a later message of the customer.",
                "position": 50 + index,
                "trigger": "customer_message",
                "conditions": {
                    "match": "all",
                    "conditions": [
                        NOT_WITH_PEOPLE,
                        {"field": "message", "operator": "matches", "value": pattern},
                    ],
                },
                "actions": [action],
            }
        )
    return rules


def ship(apps, schema_editor):
    Rule = apps.get_model("automation", "Rule")
    for values in default_rules():
        Rule.objects.get_or_create(
            name=values.pop("name"),
            defaults={**values, "is_enabled": True, "is_default": True},
        )


def unship(apps, schema_editor):
    Rule = apps.get_model("automation", "Rule")
    Rule.objects.filter(is_default=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("automation", "0003_firing_anchor"),
    ]

    operations = [migrations.RunPython(ship, unship)]
