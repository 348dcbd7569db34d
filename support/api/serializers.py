from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework import serializers


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name", "is_staff", "roles"]
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        roles = ["customer"] if not user.is_staff else []
        names = {group.name for group in user.groups.all()}
        if settings.AGENTS_GROUP in names:
            roles.append("agent")
        if settings.MANAGERS_GROUP in names or user.is_superuser:
            roles.append("manager")
        if user.is_superuser:
            roles.append("admin")
        return roles
