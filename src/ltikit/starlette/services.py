"""LTI Advantage services awaited on the event loop: ``await lti.ags.post_score(...)``,
``await lti.nrps.members()``.

Each method awaits the core service's steps (:mod:`ltikit._http`): the requests to the
platform (its token endpoint, then the service) are sent with httpx's async client, and
only the database work between them runs in a worker thread.  So a platform that takes
its whole deadline to answer holds no thread: a worker with many users waiting on a slow
gradebook still answers everyone else.  The checks, deadlines, token sharing and errors
are the core's (:class:`ltikit.lti13.ags.AssignmentGradeService`,
:class:`ltikit.lti13.nrps.NamesRoleService`); listings come whole, as lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from .._http import Steps
from ..launch import AGSEndpoint, NRPSEndpoint
from ..lti13.ags import AssignmentGradeService, LineItem, Result, Score
from ..lti13.nrps import Member, NamesRoleService

__all__ = ["AsyncAssignmentGradeService", "AsyncNamesRoleService"]

_T = TypeVar("_T")
# Awaits steps: ltikit._http_async.run with the worker's client.
Runner = Callable[[Steps[Any]], Awaitable[Any]]


class AsyncAssignmentGradeService:
    """:class:`~ltikit.lti13.ags.AssignmentGradeService`, awaited (``lti.ags``)."""

    def __init__(self, service: AssignmentGradeService, run: Runner) -> None:
        self.service, self._run = service, run

    @property
    def endpoint(self) -> AGSEndpoint:
        return self.service.endpoint

    @property
    def can_manage_line_items(self) -> bool:
        return self.service.can_manage_line_items

    async def line_items(self, *, resource_link_id: str | None = None,
                         resource_id: str | None = None, tag: str | None = None,
                         limit: int | None = None) -> list[LineItem]:
        """Every line item in the context (all pages), filtered as asked."""
        found: list[LineItem] = await self._run(self.service.line_items_steps(
            resource_link_id=resource_link_id, resource_id=resource_id, tag=tag, limit=limit))
        return found

    async def line_item(self, url: str | None = None) -> LineItem:
        found: LineItem = await self._run(self.service.line_item_steps(url))
        return found

    async def create_line_item(self, item: LineItem) -> LineItem:
        created: LineItem = await self._run(self.service.create_line_item_steps(item))
        return created

    async def update_line_item(self, item: LineItem) -> LineItem:
        updated: LineItem = await self._run(self.service.update_line_item_steps(item))
        return updated

    async def delete_line_item(self, url: str) -> None:
        await self._run(self.service.delete_line_item_steps(url))

    async def find_or_create_line_item(self, item: LineItem) -> LineItem:
        """The line item with ``item``'s resource id (or tag), created when missing."""
        found: LineItem = await self._run(self.service.find_or_create_line_item_steps(item))
        return found

    async def post_score(self, score: Score, line_item_url: str | None = None) -> None:
        await self._run(self.service.post_score_steps(score, line_item_url))

    async def results(self, line_item_url: str | None = None, *, user_id: str | None = None,
                      limit: int | None = None) -> list[Result]:
        found: list[Result] = await self._run(self.service.results_steps(
            line_item_url, user_id=user_id, limit=limit))
        return found


class AsyncNamesRoleService:
    """:class:`~ltikit.lti13.nrps.NamesRoleService`, awaited (``lti.nrps``)."""

    def __init__(self, service: NamesRoleService, run: Runner) -> None:
        self.service, self._run = service, run

    @property
    def endpoint(self) -> NRPSEndpoint:
        return self.service.endpoint

    @property
    def differences_url(self) -> str | None:
        """The URL of the changes since the last read (``rel="differences"``), if given."""
        return self.service.differences_url

    @property
    def context(self) -> Mapping[str, Any] | None:
        return self.service.context

    async def members(self, *, role: str | None = None, limit: int | None = None,
                      resource_link_id: str | None = None, url: str | None = None
                      ) -> list[Member]:
        """Every member (all pages); the arguments are
        :meth:`~ltikit.lti13.nrps.NamesRoleService.members`'s."""
        found: list[Member] = await self._run(self.service.members_steps(
            role=role, limit=limit, resource_link_id=resource_link_id, url=url))
        return found
