"""JSON over HTTP to an OpenAI-compatible server (stdlib only): timeouts, retries, typed errors.

A connection per request (a generation takes seconds; a kept-alive one the server closed in
between would fail a request for nothing), so N threads may call at once. A request
that fails transiently (refused, reset, timed out, HTTP 408/429/500/502/503/504) is retried after
`backoff * 2**i` seconds, each retry counted and logged; then `LlmUnavailableError`. Any other 4xx
is `LlmRequestError` at once, with the server's own message; a body that is not JSON is
`LlmReplyError`. The API key goes only into the Authorization header, never into a log.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from vau.cloud.explain.llm import LlmReplyError, LlmRequestError, LlmUnavailableError

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
OnRetry = Callable[[str], None]  # called with the reason before each retry


class _TransientError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


class JsonClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        connect_timeout_s: float,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        on_retry: OnRetry | None = None,
    ) -> None:
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base URL {base_url!r} is not http(s)://host[:port]/path")
        self.base_url, self._url = base_url.rstrip("/"), url
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Connection": "close",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.connect_timeout_s, self.timeout_s = connect_timeout_s, timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self._on_retry = on_retry

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to base_url + `path`; the decoded JSON object of a 2xx answer."""
        data = json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            try:
                return self._once("POST", path, data)
            except _TransientError as exc:
                if attempt == self.retries:
                    raise LlmUnavailableError(
                        f"the LLM server at {self.base_url} did not answer {path} after "
                        f"{self.retries + 1} tries ({exc}): start it or fix "
                        "explain.openai.base_url; raise explain.openai.timeout_s if it is slow"
                    ) from None
                delay = self.backoff_s * 2**attempt
                log.warning(
                    "LLM request %s failed (%s); retry %d in %.1fs", path, exc, attempt + 1, delay
                )
                if self._on_retry is not None:
                    self._on_retry(exc.reason)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _conn(self) -> http.client.HTTPConnection:
        host, port = self._url.hostname or "", self._url.port
        if self._url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.connect_timeout_s)
        return http.client.HTTPConnection(host, port, timeout=self.connect_timeout_s)

    def get(self, path: str) -> dict[str, Any]:
        """GET base_url + `path` once (no retries): for a probe at start."""
        try:
            return self._once("GET", path, None)
        except _TransientError as exc:
            raise LlmUnavailableError(f"{self.base_url}{path}: {exc}") from None

    def _once(self, method: str, path: str, data: bytes | None) -> dict[str, Any]:
        conn = self._conn()
        try:
            conn.connect()  # within connect_timeout_s; then each read within timeout_s
            assert conn.sock is not None
            conn.sock.settimeout(self.timeout_s)
            conn.request(method, self._url.path + path, body=data, headers=self._headers)
            resp = conn.getresponse()
            raw = resp.read()
        except TimeoutError as exc:
            raise _TransientError("timeout", str(exc) or "timed out") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _TransientError("connect", f"{type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if resp.status in RETRY_STATUS:
            raise _TransientError(f"http_{resp.status}", _message(raw))
        if resp.status >= 400:
            err = LlmRequestError(
                f"the LLM server at {self.base_url} refused {path} (HTTP {resp.status}: "
                f"{_message(raw)}); check explain.model against its /models list and "
                "explain.openai.api_key"
            )
            err.status = resp.status
            raise err
        try:
            obj = json.loads(raw)
        except ValueError:
            raise LlmReplyError(
                f"the LLM server at {self.base_url} answered {path} with non-JSON "
                f"({raw[:80]!r}): is explain.openai.base_url an OpenAI-compatible API root?"
            ) from None
        if not isinstance(obj, dict):
            raise LlmReplyError(f"the LLM server answered {path} with {type(obj).__name__}")
        return obj


def _message(raw: bytes) -> str:
    """The error message of an OpenAI-style error body, else the body's start."""
    try:
        obj = json.loads(raw)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        msg = err.get("message", err) if isinstance(err, dict) else err
        return str(msg)[:300]
    except ValueError:
        return raw[:300].decode("utf-8", "replace")
