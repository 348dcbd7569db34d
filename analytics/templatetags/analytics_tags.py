from django import template

from support import selectors as support_selectors

register = template.Library()


@register.filter
def is_manager(user) -> bool:
    """{% if request.user|is_manager %}: may this user read the dashboards?"""
    return support_selectors.is_manager(user)
