from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """``?page=N&page_size=M`` (M up to 100; the default comes from settings)."""

    page_size_query_param = "page_size"
    max_page_size = 100
