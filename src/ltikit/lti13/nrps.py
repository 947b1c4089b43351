"""Names and Role Provisioning Services 2.0: the members of a context (or of a link).

https://www.imsglobal.org/spec/lti-nrps/v2p0: the membership container is paged with
``Link: <...>; rel="next"``; the last page may carry ``rel="differences"``, a URL that later
returns only the changes since this read.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._http import Steps
from ..launch import NRPSEndpoint
from ..roles import Roles
from .services import ServiceClient, links

SCOPE_MEMBERSHIP_READONLY = \
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@dataclass(frozen=True)
class Member:
    """One member of the course roster.  ``roles`` are parsed like a launch's
    (:class:`~ltikit.roles.Roles`: ``member.roles.has("Learner")``); ``role_uris`` are the
    role URIs as the platform sent them."""

    user_id: str
    roles: Roles
    role_uris: tuple[str, ...] = ()
    status: str = "Active"
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    picture: str | None = None
    lis_person_sourcedid: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def role_set(self) -> Roles:
        """Deprecated: :attr:`roles` (now parsed, as a launch's are)."""
        warnings.warn("Member.role_set is now Member.roles", DeprecationWarning, stacklevel=2)
        return self.roles

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Member:
        roles = body.get("roles")
        uris = tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else ()
        known = {"user_id", "roles", "status", "name", "given_name", "family_name", "email",
                 "picture", "lis_person_sourcedid"}
        return cls(user_id=str(body.get("user_id")), roles=Roles.parse(uris), role_uris=uris,
                   status=str(body.get("status") or "Active"), name=body.get("name"),
                   given_name=body.get("given_name"), family_name=body.get("family_name"),
                   email=body.get("email"), picture=body.get("picture"),
                   lis_person_sourcedid=body.get("lis_person_sourcedid"),
                   extra={k: v for k, v in body.items() if k not in known})


class NamesRoleService:
    """The roster service a launch offered (``lti.nrps``)."""

    def __init__(self, client: ServiceClient, endpoint: NRPSEndpoint) -> None:
        self.client, self.endpoint = client, endpoint
        self.differences_url: str | None = None
        self.context: Mapping[str, Any] | None = None

    def members(self, *, role: str | None = None, limit: int | None = None,
                resource_link_id: str | None = None, url: str | None = None
                ) -> Iterator[Member]:
        """Every member (all pages, each fetched as it is read).  ``role`` filters by a
        role URI, ``resource_link_id`` (``rlid``) asks for the members who can see that
        link, ``limit`` sizes the pages; ``url`` reads a ``differences_url`` from an
        earlier read instead."""
        url, scopes, params = self._query(role, limit, resource_link_id, url)
        for response, page in self.client.pages(url, scopes, accept=MEMBERSHIP_CONTAINER,
                                                params=params, limit=limit,
                                                count=_member_count):
            yield from self._read(response, page)

    def members_steps(self, *, role: str | None = None, limit: int | None = None,
                      resource_link_id: str | None = None, url: str | None = None
                      ) -> Steps[list[Member]]:
        """:meth:`members` as steps (:mod:`ltikit._http`): all of them, in a list."""
        url, scopes, params = self._query(role, limit, resource_link_id, url)
        pages = yield from self.client.pages_steps(url, scopes, accept=MEMBERSHIP_CONTAINER,
                                                   params=params, limit=limit,
                                                   count=_member_count)
        return [member for response, page in pages
                for member in self._read(response, page)]

    def _query(self, role: str | None, limit: int | None, resource_link_id: str | None,
               url: str | None) -> tuple[str, tuple[str, ...], dict[str, Any] | None]:
        """(URL, scopes, query) of a members listing; a differences URL carries its own."""
        params = {k: v for k, v in (("role", role), ("limit", limit),
                                    ("rlid", resource_link_id)) if v is not None}
        return (url or self.endpoint.context_memberships_url, (SCOPE_MEMBERSHIP_READONLY,),
                (params or None) if url is None else None)

    def _read(self, response: Any, page: Any) -> Iterator[Member]:
        """A page's members; notes the context and the differences URL it gives."""
        if isinstance(page, dict):
            self.context = page.get("context") if isinstance(page.get("context"), dict) \
                else self.context
            for body in page.get("members") or []:
                if isinstance(body, dict):
                    yield Member.from_json(body)
        differences = links(response).get("differences")
        if differences:
            self.differences_url = differences


def _member_count(page: Any) -> int:
    members = page.get("members") if isinstance(page, dict) else None
    return len(members) if isinstance(members, list) else 0
