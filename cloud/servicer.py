"""The vau.v1.Uplink/Stream handler: reads the credential off the call, runs an IngestStream and
turns its domain errors into gRPC statuses. Every failure also carries trailing metadata:

  vau-reject-reason   the machine reason (the `vau_cloud_rejected_total` label)
  vau-reject-camera   the record's camera ("" when not about a record)   [INVALID_ARGUMENT only]
  vau-reject-seq      the record's seq ("0" when not about a record)       [INVALID_ARGUMENT only]

  INVALID_ARGUMENT    RecordRejected (validation, protocol order, undecodable bytes)
  UNAUTHENTICATED     no or unknown credential, or its token revoked/rotated while the stream
                      was open                         PERMISSION_DENIED  Hello names another device
  RESOURCE_EXHAUSTED  "streams" (server full), "rate" (ignored FlowControl); oversize messages
                      are refused by gRPC itself before reaching this handler
  ABORTED             "superseded": the same device opened a newer stream
  UNAVAILABLE         "shutdown": the server is stopping; reconnect and resume
  INTERNAL            a server bug (logged); the stream ends, the server keeps serving
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from functools import partial

import grpc

from vau.cloud.auth import Credential, CredentialWatch, OpenStream
from vau.cloud.codec import METHOD, SERVICE, decode_edge, encode_cloud
from vau.cloud.ingest import IngestDeps, IngestStream
from vau.cloud.records import AdmissionError, AuthError, EdgeIn, RecordRejected, StreamStoppedError

log = logging.getLogger("vau.cloud.servicer")

_AUTH_CODES = {
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission": grpc.StatusCode.PERMISSION_DENIED,
}
_STOP_CODES = {"superseded": grpc.StatusCode.ABORTED, "shutdown": grpc.StatusCode.UNAVAILABLE}
Metadata = tuple[tuple[str, str], ...]


def _ascii(value: str, limit: int = 64) -> str:
    """A metadata-safe rendering of an untrusted string (printable ASCII, bounded)."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value[:limit])


def status_of(exc: Exception) -> tuple[grpc.StatusCode, str, str, Metadata]:
    """(code, reason, details, trailing metadata) for a domain error."""
    if isinstance(exc, RecordRejected):
        meta = (
            ("vau-reject-reason", exc.reason),
            ("vau-reject-camera", _ascii(exc.camera)),
            ("vau-reject-seq", str(exc.seq)),
        )
        return grpc.StatusCode.INVALID_ARGUMENT, exc.reason, _ascii(str(exc), 512), meta
    if isinstance(exc, AuthError):
        return _AUTH_CODES[exc.reason], exc.reason, str(exc), (("vau-reject-reason", exc.reason),)
    if isinstance(exc, AdmissionError):
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
        return code, exc.reason, str(exc), (("vau-reject-reason", exc.reason),)
    if isinstance(exc, StreamStoppedError):
        return _STOP_CODES[exc.reason], exc.reason, str(exc), (("vau-reject-reason", exc.reason),)
    details = "internal error; reconnect and resume (the server logged it)"
    return grpc.StatusCode.INTERNAL, "internal", details, (("vau-reject-reason", "internal"),)


def credential_of(context: grpc.aio.ServicerContext) -> Credential:
    auth = context.auth_context() or {}
    cns: Sequence[bytes] = auth.get("x509_common_name", ())
    cn = cns[0].decode("utf-8", "replace") if cns else None
    bearer = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            bearer = value.removeprefix("Bearer ").strip()
    return Credential(cn, bearer)


class UplinkServicer:
    def __init__(self, deps: IngestDeps, credentials: CredentialWatch) -> None:
        self.deps, self.credentials = deps, credentials

    async def stream(
        self, requests: AsyncIterator[EdgeIn], context: grpc.aio.ServicerContext
    ) -> None:
        cred, task = credential_of(context), asyncio.current_task()
        watched: OpenStream | None = None
        try:
            # revoked while open: its lease stops it after the batch in progress (UNAUTHENTICATED)
            stop = partial(self.deps.admission.stop_task, task, "revoked")
            watched = self.credentials.watch(cred, "uplink", stop)
            await IngestStream(self.deps, cred, requests, context.write).run()
        except (RecordRejected, AuthError, AdmissionError, StreamStoppedError) as exc:
            await self._fail(context, exc)
        except Exception as exc:  # isolate the failure to this stream
            log.exception("stream failed")
            await self._fail(context, exc)
        finally:
            if watched is not None:
                self.credentials.forget(watched)

    async def _fail(self, context: grpc.aio.ServicerContext, exc: Exception) -> None:
        code, reason, details, meta = status_of(exc)
        if not isinstance(exc, StreamStoppedError):  # stops are counted where they start
            self.deps.metrics.rejected.labels(reason).inc()
        log.info("stream ended: %s %s", code.name, details)
        await context.abort(code, details, trailing_metadata=meta)

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.stream_stream_rpc_method_handler(
            self.stream, request_deserializer=decode_edge, response_serializer=encode_cloud
        )
        return grpc.method_handlers_generic_handler(SERVICE, {METHOD: method})
