from django import template

register = template.Library()

_STATUS_CLASSES = {
    "new": "text-bg-primary",
    "analyzing": "text-bg-info",
    "ai_responding": "text-bg-info",
    "awaiting_customer": "text-bg-warning",
    "escalated": "text-bg-danger",
    "resolved": "text-bg-success",
    "closed": "text-bg-secondary",
}
_PRIORITY_CLASSES = {
    "low": "text-bg-light",
    "normal": "text-bg-secondary",
    "high": "text-bg-warning",
    "urgent": "text-bg-danger",
}


@register.filter
def status_class(status: str) -> str:
    return _STATUS_CLASSES.get(status, "text-bg-secondary")


@register.filter
def priority_class(priority: str) -> str:
    return _PRIORITY_CLASSES.get(priority, "text-bg-secondary")


@register.filter
def customer_status(ticket) -> str:
    """How the status reads to the customer (they need not know our pipeline)."""
    return {
        "new": "Received",
        "analyzing": "Being looked at",
        "ai_responding": "Being looked at",
        "awaiting_customer": "Waiting for your reply",
        "escalated": "With our team",
        "resolved": "Solved",
        "closed": "Closed",
    }.get(ticket.status, ticket.get_status_display())
