from django import template

from core import roles

register = template.Library()


@register.filter
def is_manager(user) -> bool:
    """{% if request.user|is_manager %}: may this user read the dashboards?"""
    return roles.is_manager(user)
