"""factory-boy factories shared by all tests."""

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group


def _add_groups(user, names) -> None:
    for name in names:
        user.groups.add(Group.objects.get_or_create(name=name)[0])


class UserFactory(factory.django.DjangoModelFactory):
    """A customer by default; pass ``groups=[...]`` for more."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            _add_groups(self, extracted)

    @factory.post_generation
    def email_verified(self, create, extracted, **kwargs):
        """People made here have a verified email (allauth's row), like real accounts
        past sign-up; ``email_verified=False`` makes one who has not followed the link."""
        if create and self.email:
            from allauth.account.models import EmailAddress

            EmailAddress.objects.update_or_create(
                user=self,
                email=self.email.lower(),
                defaults={"verified": extracted is not False, "primary": True},
            )


class AgentFactory(UserFactory):
    is_staff = True

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create:
            _add_groups(self, extracted or [settings.AGENTS_GROUP])


class ManagerFactory(UserFactory):
    is_staff = True

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create:
            _add_groups(self, extracted or [settings.AGENTS_GROUP, settings.MANAGERS_GROUP])


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "support.Organization"
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Org {n}")
    plan = "business"
    mrr = 500


class CustomerFactory(UserFactory):
    """A customer with a profile in ``organization`` (None: no organization)."""

    @factory.post_generation
    def profile(self, create, extracted, **kwargs):
        if create:
            from support.models import CustomerProfile

            CustomerProfile.objects.update_or_create(
                user=self,
                defaults={
                    "organization": kwargs.get("organization"),
                    "is_org_admin": kwargs.get("is_org_admin", False),
                },
            )


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "support.Team"
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")
    handles = factory.LazyFunction(list)


class SavedReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "support.SavedReply"

    title = factory.Sequence(lambda n: f"Reply {n}")
    body = "Hi {{ customer.first_name }}, about {{ ticket.reference }}: we are on it."
