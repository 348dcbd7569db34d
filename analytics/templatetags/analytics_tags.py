from django import template

from analytics import selectors

register = template.Library()


@register.filter
def is_manager(user) -> bool:
    """{% if request.user|is_manager %}: may this user read the dashboards?"""
    return selectors.is_manager(user)
