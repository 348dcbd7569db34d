"""Calling addresses that staff typed in (outbound webhooks, HTTP actions): which ones
may be called at all.

A URL from the admin could point inside the network (``http://169.254.169.254/``, a
database's port, ``localhost``); the server would then make requests for whoever wrote it.
:func:`resolve_public` resolves the host and refuses any private, loopback, link-local,
multicast or reserved address; callers then connect to an address it returned (not to the
name again), so a DNS answer that changes between the check and the connection cannot
point the request inside. ``HELPDESK_WEBHOOKS_ALLOW_PRIVATE`` (on under DEBUG and tests)
lets every address pass.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import DomainError


class AddressRefused(DomainError):
    """The URL's host is (or resolves to) an address that may not be called."""


def check_url_syntax(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or a DomainError on field ``url``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DomainError(f"Not a valid URL: {exc}.", field="url") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DomainError("Use an http:// or https:// URL with a host name.", field="url")
    if parts.username or parts.password:
        raise DomainError("Put no user name or password in the URL.", field="url")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve_public(url: str) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them public; refuses (field
    ``url``) a host that does not resolve or has any private, loopback, link-local,
    multicast or reserved address. With ``HELPDESK_WEBHOOKS_ALLOW_PRIVATE`` every address
    passes."""
    _scheme, host, port = check_url_syntax(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"The host {host} does not resolve.", field="url") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if settings.HELPDESK_WEBHOOKS_ALLOW_PRIVATE:
        return addresses
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise AddressRefused(
                f"{host} resolves to {address}, a private or reserved address: refused.",
                field="url",
            )
    return addresses


@contextlib.contextmanager
def pinned_request(
    method: str, url: str, addresses: list[str], *, timeout, headers: dict, **body
) -> Iterator:
    """The response (streamed, closed on leaving) of ``method url`` sent to the first of
    ``addresses`` (what :func:`resolve_public` returned) that accepts the connection; the
    URL's host still names the site (Host header, TLS server name, certificate check). No
    redirect is followed and no proxy of the environment used. ``body``: ``content``,
    ``json`` or ``params``, as httpx takes them."""
    import httpx

    target = httpx.URL(url)
    headers = {**headers, "Host": target.netloc.decode("ascii")}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        response = None
        for index, address in enumerate(addresses):
            request = client.build_request(
                method,
                target.copy_with(host=address.split("%")[0]),
                headers=headers,
                extensions=extensions,
                **body,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError:
                if index == len(addresses) - 1:
                    raise
                continue
            break
        try:
            yield response
        finally:
            response.close()
