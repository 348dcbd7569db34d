"""Categories are written by knowledge.services (create, update, delete) from every door:
the services themselves, the API and the admin."""

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core.errors import Conflict, DomainError
from knowledge import services
from knowledge.admin import CategoryForm
from knowledge.models import Article, Category
from tests.factories import UserFactory


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


# ---- services ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestCategoryServices:
    def test_create_takes_the_slug_of_the_name_and_refuses_a_taken_one(self):
        created = services.category_create(name="Billing & plans", icon="💳")

        with pytest.raises(DomainError) as taken:
            services.category_create(name="Other", slug="billing-plans")

        assert (created.slug, created.icon, created.parent) == ("billing-plans", "💳", None)
        assert taken.value.field == "slug"
        assert Category.objects.count() == 1

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"name": " "}, "name"),
            ({"name": "Ok", "slug": "not a slug"}, "slug"),
            ({"name": "Ok", "icon": "x" * 17}, "icon"),
        ],
    )
    def test_create_refuses_what_the_model_cannot_hold(self, kwargs, field):
        with pytest.raises(DomainError) as error:
            services.category_create(**kwargs)

        assert error.value.field == field
        assert not Category.objects.exists()

    def test_update_changes_what_is_given_and_saves_nothing_when_nothing_changes(self, categories):
        data = categories["data"]

        updated = services.category_update(category=data, name="Data & privacy", parent=None)
        with CaptureQueriesContext(connection) as queries:
            services.category_update(category=updated, name="Data & privacy", display_order=0)

        data.refresh_from_db()
        assert (data.name, data.slug, data.parent) == ("Data & privacy", "data", None)
        assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]

    def test_a_parent_that_makes_a_cycle_is_refused(self, categories):
        root = categories["account"].parent
        grandchild = services.category_create(name="2FA", parent=categories["account"])

        with pytest.raises(DomainError) as itself:
            services.category_update(category=root, parent=root)
        with pytest.raises(DomainError) as descendant:
            services.category_update(category=root, parent=grandchild)

        assert itself.value.field == descendant.value.field == "parent"
        assert "itself" in itself.value.message
        assert "subcategories" in descendant.value.message
        root.refresh_from_db()
        assert root.parent is None

    def test_delete_refuses_a_category_with_articles_or_subcategories(self, categories):
        services.article_create(title="T", body="B", category=categories["data"])
        root = categories["data"].parent

        with pytest.raises(Conflict) as with_articles:
            services.category_delete(category=categories["data"])
        with pytest.raises(Conflict) as with_children:
            services.category_delete(category=root)
        services.category_delete(category=categories["billing"])

        assert with_articles.value.code == with_children.value.code == "protected"
        assert "1 article;" in with_articles.value.message
        assert "3 subcategories" in with_children.value.message
        assert set(Category.objects.values_list("slug", flat=True)) == {"help", "account", "data"}


# ---- API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_writes_categories_through_the_services(agent, categories):
    created = api(agent).post(
        "/api/categories/", {"name": "Mobile", "slug": "mobile", "parent": "help"}, format="json"
    )
    moved = api(agent).patch("/api/categories/mobile/", {"parent": None}, format="json")
    renamed = api(agent).put(
        "/api/categories/mobile/", {"name": "Mobile apps", "slug": "mobile-apps"}, format="json"
    )
    deleted = api(agent).delete("/api/categories/mobile-apps/")

    assert created.status_code == 201 and created.json()["parent"] == "help"
    assert moved.status_code == 200 and moved.json()["parent"] is None
    assert renamed.status_code == 200 and renamed.json()["slug"] == "mobile-apps"
    assert deleted.status_code == 204
    assert not Category.objects.filter(slug__startswith="mobile").exists()


@pytest.mark.django_db
def test_api_refuses_a_cycle_with_a_field_error(agent, categories):
    response = api(agent).patch("/api/categories/help/", {"parent": "account"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "parent": ["A category cannot sit inside one of its own subcategories."]
    }


@pytest.mark.django_db
def test_api_deleting_a_category_with_articles_is_409(agent, categories):
    services.article_create(title="T", body="B", category=categories["account"])

    response = api(agent).delete("/api/categories/account/")

    assert response.status_code == 409
    assert response.json()["code"] == "protected"
    assert "move them to another category" in response.json()["detail"]
    assert Category.objects.filter(slug="account").exists()


@pytest.mark.django_db
def test_api_customers_read_but_may_not_write_categories(customer, categories):
    as_customer = api(customer)

    assert as_customer.get("/api/categories/").status_code == 200
    assert as_customer.post("/api/categories/", {"name": "X", "slug": "x"}).status_code == 403
    assert as_customer.patch("/api/categories/data/", {"name": "Y"}).status_code == 403
    assert as_customer.delete("/api/categories/data/").status_code == 403
    assert api().delete("/api/categories/data/").status_code in {401, 403}
    assert Category.objects.get(slug="data").name == "Data"


# ---- admin ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_adds_and_edits_categories_through_the_services(client, agent, categories):
    client.force_login(agent)
    form = {"description": "", "icon": "", "display_order": 3, "is_visible": "on"}

    added = client.post(
        "/admin/knowledge/category/add/",
        {**form, "name": "Mobile", "slug": "mobile", "parent": categories["data"].pk},
    )
    mobile = Category.objects.get(slug="mobile")
    edited = client.post(
        f"/admin/knowledge/category/{mobile.pk}/change/",
        {**form, "name": "Mobile apps", "slug": "mobile", "parent": ""},
    )

    assert added.status_code == edited.status_code == 302
    mobile.refresh_from_db()
    assert (mobile.name, mobile.parent, mobile.display_order) == ("Mobile apps", None, 3)


@pytest.mark.django_db
def test_admin_shows_a_cycle_as_a_form_error(client, agent, categories):
    client.force_login(agent)
    root = categories["data"].parent

    response = client.post(
        f"/admin/knowledge/category/{root.pk}/change/",
        {"name": "Help", "slug": "help", "parent": categories["data"].pk, "display_order": 0},
    )

    assert response.status_code == 200
    assert "A category cannot sit inside one of its own subcategories." in (
        response.content.decode()
    )
    root.refresh_from_db()
    assert root.parent is None


@pytest.mark.django_db
def test_admin_shows_a_refusal_that_passed_the_form_as_a_message(
    client, agent, categories, monkeypatch
):
    """A cycle made between the form's check and the save (another agent's move) is
    refused by the service: a message, the form again, nothing logged as changed."""
    monkeypatch.setattr(CategoryForm, "clean", lambda form: form.cleaned_data)
    client.force_login(agent)
    root = categories["data"].parent
    url = f"/admin/knowledge/category/{root.pk}/change/"

    response = client.post(
        url, {"name": "Help", "slug": "help", "parent": categories["data"].pk, "display_order": 0}
    )

    assert response.status_code == 302 and response["Location"] == url
    page = client.get(url).content.decode()
    assert "A category cannot sit inside one of its own subcategories." in page
    assert "was changed successfully" not in page
    assert not LogEntry.objects.filter(action_flag=CHANGE).exists()
    root.refresh_from_db()
    assert root.parent is None


@pytest.mark.django_db
def test_admin_list_editable_saves_through_the_service(client, agent, categories):
    client.force_login(agent)
    rows = list(Category.objects.order_by("display_order", "name"))
    data = {
        "form-TOTAL_FORMS": len(rows),
        "form-INITIAL_FORMS": len(rows),
        "_save": "Save",
    }
    for i, category in enumerate(rows):
        data[f"form-{i}-id"] = category.pk
        data[f"form-{i}-display_order"] = 7 if category.slug == "billing" else 0
        data[f"form-{i}-is_visible"] = "on"

    response = client.post("/admin/knowledge/category/", data)

    assert response.status_code == 302
    assert Category.objects.get(slug="billing").display_order == 7


@pytest.mark.django_db
def test_admin_deleting_a_category_with_articles_shows_the_services_message(
    client, superuser, categories
):
    services.article_create(title="T", body="B", category=categories["account"])
    empty = categories["billing"]
    client.force_login(superuser)

    response = client.post(
        "/admin/knowledge/category/",
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [categories["account"].pk, empty.pk],
        },
        follow=True,
    )

    page = response.content.decode()
    assert "“Account” still holds 1 article; move them" in page
    assert "Deleted 1 category." in page
    assert set(Category.objects.values_list("slug", flat=True)) == {"help", "account", "data"}
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 1


@pytest.mark.django_db
def test_admin_delete_page_of_a_category_in_use_refuses_and_an_empty_one_goes(
    client, superuser, categories
):
    article = services.article_create(title="T", body="B", category=categories["account"])
    client.force_login(superuser)

    refused = client.post(f"/admin/knowledge/category/{categories['account'].pk}/delete/")
    deleted = client.post(
        f"/admin/knowledge/category/{categories['billing'].pk}/delete/", {"post": "yes"}
    )

    assert refused.status_code == 200 and "Cannot delete" in refused.content.decode()
    assert deleted.status_code == 302
    assert not Category.objects.filter(slug="billing").exists()
    assert Article.objects.filter(pk=article.pk).exists()
    assert LogEntry.objects.get(action_flag=DELETION).object_repr == "Billing"


@pytest.mark.django_db
def test_agents_may_not_delete_categories_in_the_admin(client, agent, categories):
    client.force_login(agent)

    response = client.post(
        f"/admin/knowledge/category/{categories['billing'].pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 403
    assert Category.objects.filter(slug="billing").exists()
