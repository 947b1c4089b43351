"""Starlette and FastAPI adapter: :class:`LTIKit`, the ``lti`` dependency and decorator,
and :class:`LTI`, the same ``lti`` object as on Flask with awaitable services.

This is the only package of ltikit that imports Starlette::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from ltikit.starlette import LTI, LTIKit

    app = FastAPI()
    kit = LTIKit(app, config={"LTIKIT_DATABASE_URL": "sqlite:///tool.sqlite3",
                              "LTIKIT_CONSUMERS": {"key": "secret"}},
                 secret_key=SECRET_KEY, role="staff")

    @app.post("/launch")
    async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]):
        return {"hello": lti.user.name}
"""

from __future__ import annotations

from ..errors import (
    LTIException,
    LTIMalformedRequest,
    LTINotInSessionException,
    LTIPostMessageException,
    LTIRoleException,
)
from .extension import LTIKit
from .services import AsyncAssignmentGradeService, AsyncNamesRoleService
from .view import LTI

__all__ = ["LTI", "AsyncAssignmentGradeService", "AsyncNamesRoleService", "LTIException",
           "LTIKit", "LTIMalformedRequest", "LTINotInSessionException",
           "LTIPostMessageException", "LTIRoleException"]
