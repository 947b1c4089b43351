"""Assignment and Grade Services 2.0: line items, scores and results.

Names follow the specification (https://www.imsglobal.org/spec/lti-ags/v2p0): a *line item*
is a gradebook column, a *score* is what the tool reports for one user on it, a *result*
is what the platform holds for that user.  The launch's ``lti-ags/claim/endpoint`` says
which scopes the tool was granted and where the line items are (``lineitems``), and, when
the launch belongs to one column, that column (``lineitem``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._http import Steps, run
from ..launch import AGSEndpoint
from .services import ServiceClient, ServiceError

SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM = SCOPE + "lineitem"
SCOPE_LINEITEM_READONLY = SCOPE + "lineitem.readonly"
SCOPE_RESULT_READONLY = SCOPE + "result.readonly"
SCOPE_SCORE = SCOPE + "score"

LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")


@dataclass(frozen=True)
class LineItem:
    """A gradebook column.  ``id`` is its URL (absent until the platform made it)."""

    label: str
    score_maximum: float
    id: str | None = None
    resource_id: str | None = None
    resource_link_id: str | None = None
    tag: str | None = None
    start_date_time: str | None = None
    end_date_time: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {**self.extra, "label": self.label,
                                "scoreMaximum": self.score_maximum}
        for name, value in (("id", self.id), ("resourceId", self.resource_id),
                            ("resourceLinkId", self.resource_link_id), ("tag", self.tag),
                            ("startDateTime", self.start_date_time),
                            ("endDateTime", self.end_date_time)):
            if value is not None:
                body[name] = value
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> LineItem:
        known = {"id", "label", "scoreMaximum", "resourceId", "resourceLinkId", "tag",
                 "startDateTime", "endDateTime"}
        return cls(label=str(body.get("label", "")), score_maximum=float(body["scoreMaximum"]),
                   id=body.get("id"), resource_id=body.get("resourceId"),
                   resource_link_id=body.get("resourceLinkId"), tag=body.get("tag"),
                   start_date_time=body.get("startDateTime"),
                   end_date_time=body.get("endDateTime"),
                   extra={k: v for k, v in body.items() if k not in known})


@dataclass(frozen=True)
class Score:
    """One user's score on a line item, as the tool reports it."""

    user_id: str
    score_given: float | None = None
    score_maximum: float | None = None
    activity_progress: str = "Completed"
    grading_progress: str = "FullyGraded"
    comment: str | None = None
    timestamp: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        if self.activity_progress not in ACTIVITY_PROGRESS:
            raise ValueError(f"activity_progress must be one of {ACTIVITY_PROGRESS}")
        if self.grading_progress not in GRADING_PROGRESS:
            raise ValueError(f"grading_progress must be one of {GRADING_PROGRESS}")
        if (self.score_given is None) != (self.score_maximum is None):
            raise ValueError("score_given and score_maximum go together")
        if self.score_given is not None and (self.score_given < 0 or
                                             (self.score_maximum or 0) <= 0):
            raise ValueError("score_given must be >= 0 and score_maximum > 0")
        stamp = self.timestamp or datetime.now(UTC)
        if stamp.tzinfo is None:
            raise ValueError("the timestamp needs a time zone")
        body: dict[str, Any] = {
            **self.extra, "userId": self.user_id, "activityProgress": self.activity_progress,
            "gradingProgress": self.grading_progress,
            # ISO 8601 with sub-second precision and offset, as the specification shows.
            "timestamp": stamp.isoformat(timespec="milliseconds")}
        if self.score_given is not None:
            body["scoreGiven"] = self.score_given
            body["scoreMaximum"] = self.score_maximum
        if self.comment is not None:
            body["comment"] = self.comment
        return body


@dataclass(frozen=True)
class Result:
    user_id: str
    result_score: float | None
    result_maximum: float | None
    comment: str | None
    id: str | None
    score_of: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Result:
        return cls(user_id=str(body.get("userId")), result_score=body.get("resultScore"),
                   result_maximum=body.get("resultMaximum"), comment=body.get("comment"),
                   id=body.get("id"), score_of=body.get("scoreOf"))


def _below(url: str, path: str) -> str:
    """``url`` + ``/path`` before its query string (line item URLs may carry one)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + path))


class AssignmentGradeService:
    """The grade service a launch offered (``lti.ags``)."""

    def __init__(self, client: ServiceClient, endpoint: AGSEndpoint) -> None:
        self.client, self.endpoint = client, endpoint

    def _need(self, *scopes: str) -> tuple[str, ...]:
        """The scopes to ask a token for: every AGS scope the launch granted (one token
        serves line items, scores and results), provided one of ``scopes`` is among them."""
        if not any(s in self.endpoint.scopes for s in scopes):
            raise ServiceError(f"The platform did not grant the tool any of {scopes}.",
                               reason="scope_not_granted")
        return tuple(s for s in self.endpoint.scopes if s.startswith(SCOPE))

    @property
    def can_manage_line_items(self) -> bool:
        return SCOPE_LINEITEM in self.endpoint.scopes

    # Each call is written once, as steps (:mod:`ltikit._http`); the method of the same
    # name without ``_steps`` runs them here and now.  An async adapter awaits the steps.

    # -- line items ------------------------------------------------------------------------
    def line_items(self, *, resource_link_id: str | None = None,
                   resource_id: str | None = None, tag: str | None = None,
                   limit: int | None = None) -> Iterator[LineItem]:
        """Every line item in the context (all pages, each fetched as it is read),
        filtered as asked."""
        url, scopes, params = self._line_items_query(resource_link_id, resource_id, tag,
                                                     limit)
        for _, page in self.client.pages(url, scopes, accept=LINEITEM_CONTAINER,
                                         params=params, limit=limit):
            yield from _line_items_in(page)

    def line_items_steps(self, *, resource_link_id: str | None = None,
                         resource_id: str | None = None, tag: str | None = None,
                         limit: int | None = None) -> Steps[list[LineItem]]:
        """:meth:`line_items` as steps: all of them, in a list."""
        url, scopes, params = self._line_items_query(resource_link_id, resource_id, tag,
                                                     limit)
        pages = yield from self.client.pages_steps(url, scopes, accept=LINEITEM_CONTAINER,
                                                   params=params, limit=limit)
        return [item for _, page in pages for item in _line_items_in(page)]

    def _line_items_query(self, resource_link_id: str | None, resource_id: str | None,
                          tag: str | None, limit: int | None
                          ) -> tuple[str, tuple[str, ...], dict[str, Any] | None]:
        params = {k: v for k, v in (("resource_link_id", resource_link_id),
                                    ("resource_id", resource_id), ("tag", tag),
                                    ("limit", limit)) if v is not None}
        return (self._lineitems_url(), self._need(SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM),
                params or None)

    def line_item(self, url: str | None = None) -> LineItem:
        return run(self.line_item_steps(url))

    def line_item_steps(self, url: str | None = None) -> Steps[LineItem]:
        url = url or self._lineitem_url()
        scopes = self._need(SCOPE_LINEITEM_READONLY, SCOPE_LINEITEM)
        response = yield from self.client.request_steps("GET", url, scopes, accept=LINEITEM)
        return LineItem.from_json(response.json())

    def create_line_item(self, item: LineItem) -> LineItem:
        return run(self.create_line_item_steps(item))

    def create_line_item_steps(self, item: LineItem) -> Steps[LineItem]:
        response = yield from self.client.request_steps(
            "POST", self._lineitems_url(), self._need(SCOPE_LINEITEM), accept=LINEITEM,
            content_type=LINEITEM, body=item.to_json())
        return LineItem.from_json(response.json())

    def update_line_item(self, item: LineItem) -> LineItem:
        return run(self.update_line_item_steps(item))

    def update_line_item_steps(self, item: LineItem) -> Steps[LineItem]:
        if not item.id:
            raise ValueError("the line item has no id (URL) yet")
        response = yield from self.client.request_steps(
            "PUT", item.id, self._need(SCOPE_LINEITEM), accept=LINEITEM,
            content_type=LINEITEM, body=item.to_json())
        return LineItem.from_json(response.json())

    def delete_line_item(self, url: str) -> None:
        return run(self.delete_line_item_steps(url))

    def delete_line_item_steps(self, url: str) -> Steps[None]:
        yield from self.client.request_steps("DELETE", url, self._need(SCOPE_LINEITEM))

    def find_or_create_line_item(self, item: LineItem) -> LineItem:
        """The line item with ``item``'s resource id (or tag), created when missing."""
        for found in self.line_items(resource_id=item.resource_id, tag=item.tag,
                                     resource_link_id=item.resource_link_id):
            return found  # the later pages are not fetched
        return self.create_line_item(item)

    def find_or_create_line_item_steps(self, item: LineItem) -> Steps[LineItem]:
        """:meth:`find_or_create_line_item` as steps."""
        found = yield from self.line_items_steps(resource_id=item.resource_id, tag=item.tag,
                                                 resource_link_id=item.resource_link_id)
        if found:
            return found[0]
        return (yield from self.create_line_item_steps(item))

    # -- scores and results ----------------------------------------------------------------
    def post_score(self, score: Score, line_item_url: str | None = None) -> None:
        return run(self.post_score_steps(score, line_item_url))

    def post_score_steps(self, score: Score, line_item_url: str | None = None
                         ) -> Steps[None]:
        url = _below(line_item_url or self._lineitem_url(), "scores")
        yield from self.client.request_steps("POST", url, self._need(SCOPE_SCORE),
                                             content_type=SCORE, body=score.to_json())

    def results(self, line_item_url: str | None = None, *, user_id: str | None = None,
                limit: int | None = None) -> Iterator[Result]:
        """The platform's results on a line item (all pages, each fetched as it is read)."""
        url, scopes, params = self._results_query(line_item_url, user_id, limit)
        for _, page in self.client.pages(url, scopes, accept=RESULT_CONTAINER,
                                         params=params, limit=limit):
            yield from _results_in(page)

    def results_steps(self, line_item_url: str | None = None, *,
                      user_id: str | None = None, limit: int | None = None
                      ) -> Steps[list[Result]]:
        """:meth:`results` as steps: all of them, in a list."""
        url, scopes, params = self._results_query(line_item_url, user_id, limit)
        pages = yield from self.client.pages_steps(url, scopes, accept=RESULT_CONTAINER,
                                                   params=params, limit=limit)
        return [result for _, page in pages for result in _results_in(page)]

    def _results_query(self, line_item_url: str | None, user_id: str | None,
                       limit: int | None
                       ) -> tuple[str, tuple[str, ...], dict[str, Any] | None]:
        params = {k: v for k, v in (("user_id", user_id), ("limit", limit)) if v is not None}
        return (_below(line_item_url or self._lineitem_url(), "results"),
                self._need(SCOPE_RESULT_READONLY), params or None)

    def _lineitems_url(self) -> str:
        if not self.endpoint.lineitems:
            raise ServiceError("The platform gave no line items URL with this launch.",
                               reason="no_lineitems_url")
        return self.endpoint.lineitems

    def _lineitem_url(self) -> str:
        if not self.endpoint.lineitem:
            raise ServiceError("This launch is not tied to one line item; name it.",
                               reason="no_lineitem")
        return self.endpoint.lineitem


def _line_items_in(page: Any) -> Iterator[LineItem]:
    for body in page if isinstance(page, list) else []:
        yield LineItem.from_json(body)


def _results_in(page: Any) -> Iterator[Result]:
    for body in page if isinstance(page, list) else []:
        yield Result.from_json(body)
