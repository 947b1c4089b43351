"""LTI 1.1 Basic Outcomes client (LTI 1.1.1 Implementation Guide, section 6).

Requests are POX (Plain Old XML) envelopes POSTed to ``lis_outcome_service_url`` and
signed with OAuth 1.0a in the ``Authorization`` header, the body covered by
``oauth_body_hash`` (the OAuth Request Body Hash extension), which oauthlib's ``Client``
adds for non-form bodies.  A request succeeds only if the HTTP status is 200 *and*
``imsx_codeMajor`` in the response header is ``success``.

Canvas also accepts ``resultData`` (a text or a URL shown with the submission) in
replaceResult; pass ``result_text`` or ``result_url``.
"""

from __future__ import annotations

import json
import math
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

import defusedxml.ElementTree as SafeET
import requests
from defusedxml import DefusedXmlException
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

from .. import _http
from ..errors import LTIPostMessageException

NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
CONTENT_TYPE = "application/xml"
MAX_RESPONSE_BYTES = 1_000_000
# Seconds to connect, and for the whole call (a grade is posted inside a user's request).
DEFAULT_TIMEOUT = (3.0, 15.0)
RESULT2_CONTENT_TYPE = "application/vnd.ims.lis.v2.result+json"


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


@dataclass(frozen=True, slots=True)
class OutcomeResponse:
    code_major: str
    severity: str | None
    description: str | None
    message_ref: str | None
    score: float | None = None

    @property
    def is_success(self) -> bool:
        return self.code_major == "success"


def build_request(operation: str, sourcedid: str, *, score: float | None = None,
                  result_text: str | None = None, result_url: str | None = None,
                  message_id: str | None = None) -> bytes:
    """The POX envelope for ``replaceResult``, ``readResult`` or ``deleteResult``."""
    ET.register_namespace("", NS)
    envelope = ET.Element(_q("imsx_POXEnvelopeRequest"))
    header = ET.SubElement(ET.SubElement(envelope, _q("imsx_POXHeader")),
                           _q("imsx_POXRequestHeaderInfo"))
    ET.SubElement(header, _q("imsx_version")).text = "V1.0"
    ET.SubElement(header, _q("imsx_messageIdentifier")).text = message_id or uuid.uuid4().hex
    body = ET.SubElement(envelope, _q("imsx_POXBody"))
    record = ET.SubElement(ET.SubElement(body, _q(f"{operation}Request")), _q("resultRecord"))
    guid = ET.SubElement(record, _q("sourcedGUID"))
    ET.SubElement(guid, _q("sourcedId")).text = sourcedid
    if operation == "replaceResult":
        result = ET.SubElement(record, _q("result"))
        if score is not None:
            score_el = ET.SubElement(result, _q("resultScore"))
            ET.SubElement(score_el, _q("language")).text = "en"
            ET.SubElement(score_el, _q("textString")).text = repr(float(score))
        if result_text is not None or result_url is not None:
            data = ET.SubElement(result, _q("resultData"))
            if result_text is not None:
                ET.SubElement(data, _q("text")).text = result_text
            if result_url is not None:
                ET.SubElement(data, _q("url")).text = result_url
    return bytes(ET.tostring(envelope, encoding="utf-8", xml_declaration=True))


def parse_response(body: bytes) -> OutcomeResponse:
    """Read ``imsx_statusInfo`` (and a readResult score) from a POX response."""
    try:
        root = SafeET.fromstring(body)  # no DTDs, entities or external references
    except (ET.ParseError, DefusedXmlException):
        raise LTIPostMessageException("The platform's outcome response is not usable XML.",
                                      reason="bad_outcome_response") from None
    status = root.find(f"{_q('imsx_POXHeader')}/{_q('imsx_POXResponseHeaderInfo')}/"
                       f"{_q('imsx_statusInfo')}")
    code = status.find(_q("imsx_codeMajor")) if status is not None else None
    if root.tag != _q("imsx_POXEnvelopeResponse") or code is None or not code.text:
        raise LTIPostMessageException("The platform's outcome response has no status.",
                                      reason="bad_outcome_response")

    def text(parent: ET.Element | None, tag: str) -> str | None:
        el = parent.find(_q(tag)) if parent is not None else None
        return el.text.strip() if el is not None and el.text else None

    score = None
    score_text = root.findtext(f".//{_q('readResultResponse')}/{_q('result')}/"
                               f"{_q('resultScore')}/{_q('textString')}")
    if score_text and score_text.strip():
        try:
            score = float(score_text)
        except ValueError:
            score = None
    return OutcomeResponse(code_major=code.text.strip(), severity=text(status, "imsx_severity"),
                           description=text(status, "imsx_description"),
                           message_ref=text(status, "imsx_messageRefIdentifier"), score=score)


class OutcomeService:
    """Sends Basic Outcomes requests for one consumer key and secret."""

    def __init__(self, consumer_key: str, consumer_secret: str, *,
                 session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self._client = Client(consumer_key, client_secret=consumer_secret,
                              signature_method=SIGNATURE_HMAC_SHA1,
                              signature_type=SIGNATURE_TYPE_AUTH_HEADER)
        self._session = session or _http.new_session()
        self._connect_timeout, self._total_timeout = _http.timeouts(timeout, DEFAULT_TIMEOUT)

    def replace_result(self, url: str, sourcedid: str, score: float | None, *,
                       result_text: str | None = None,
                       result_url: str | None = None) -> OutcomeResponse:
        if score is not None and (not math.isfinite(score) or not 0.0 <= score <= 1.0):
            raise ValueError("an LTI 1.1 score is a number from 0.0 to 1.0")
        return self._send(url, build_request("replaceResult", sourcedid, score=score,
                                             result_text=result_text, result_url=result_url))

    def read_result(self, url: str, sourcedid: str) -> OutcomeResponse:
        return self._send(url, build_request("readResult", sourcedid))

    def delete_result(self, url: str, sourcedid: str) -> OutcomeResponse:
        return self._send(url, build_request("deleteResult", sourcedid))

    def put_result2(self, url: str, score: float, *, comment: str = "") -> None:
        """PUT an LTI 2.0 Result (``application/vnd.ims.lis.v2.result+json``, signed with
        ``oauth_body_hash``): the REST variant of replaceResult that Open edX serves at
        ``.../lti_2_0_result_rest_handler/user/<user id>`` (PyLTI's ``post_grade2``)."""
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise ValueError("an LTI 2.0 result score is a number from 0.0 to 1.0")
        body = json.dumps({"@context": "http://purl.imsglobal.org/ctx/lis/v2/Result",
                           "@type": "Result", "resultScore": score, "comment": comment})
        self._request("PUT", url, body.encode("utf-8"), RESULT2_CONTENT_TYPE)

    def _send(self, url: str, body: bytes) -> OutcomeResponse:
        content = self._request("POST", url, body, CONTENT_TYPE)
        result = parse_response(content)
        if not result.is_success:
            raise LTIPostMessageException(
                f"The platform refused the outcome: {result.code_major}"
                + (f" ({result.description})" if result.description else ""),
                reason="outcome_refused")
        return result

    def _request(self, method: Literal["PUT", "POST"], url: str, body: bytes,
                 content_type: str) -> bytes:
        """Send a signed request (its body hash in the OAuth header); the answer's body
        when the status is 200."""
        signed_url, headers, signed_body = self._client.sign(
            url, http_method=method, body=body.decode("utf-8"),
            headers={"Content-Type": content_type})
        try:
            response, content = _http.send(
                self._session, method, signed_url, data=signed_body.encode("utf-8"),
                headers=headers, connect_timeout=self._connect_timeout,
                total_timeout=self._total_timeout, max_bytes=MAX_RESPONSE_BYTES)
        except _http.BodyTooLarge:
            raise LTIPostMessageException("The platform's outcome response is too large.",
                                          reason="bad_outcome_response") from None
        except _http.DeadlineExceeded:
            raise LTIPostMessageException(
                f"The platform's outcome service did not answer within "
                f"{self._total_timeout:g} s.", reason="outcome_timeout") from None
        except requests.RequestException as exc:
            raise LTIPostMessageException(
                f"The platform's outcome service could not be reached ({type(exc).__name__}).",
                reason="outcome_unreachable") from None
        if response.status_code != 200:
            raise LTIPostMessageException(
                f"The platform's outcome service answered HTTP {response.status_code}.",
                reason="outcome_http_error")
        return content
