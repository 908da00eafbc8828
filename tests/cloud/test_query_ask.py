"""Query.Ask with the real SmolLM2: an event sent over the uplink is stored, then questioned."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from support.cloud_harness import RawStream, ServerThread, cloud_settings, hello

from vau.cloud.explain.schema import Explanation
from vau.edge.types import EventState, EventUpdate
from vau.edge.uplink import codec as edge
from vau.protos.v1 import query_pb2 as qpb

PRIOR = "Known common anomaly types are: 'Fighting'. One occurs from 2.0s to 6.0s."


def test_query_ask_when_event_stored_then_schema_valid_answer(tmp_path: Path) -> None:
    explain = {"enabled": True, "max_new_tokens": 16, "poll_s": 0.05, "window_wait_s": 0.0}
    server = ServerThread(cloud_settings(tmp_path / "data", explain=explain))
    try:
        with grpc.insecure_channel(server.target) as ch:
            stream = RawStream(ch)
            stream.send(hello("dev-a"))
            stream.recv()
            now = time.time()
            # an open event: stored, but not explained on its own (that waits for its end)
            update = EventUpdate("ev-1", EventState.NEW, 2.0, None, 0.7, 2.5, PRIOR)
            body = edge.event_body(update, now)
            stream.send(edge.serialize(edge.record_message("cam-0", 1, 1, body)))
            stream.acks_until("cam-0", 1)
            stream.close()
            ref = qpb.EventRef(device_id="dev-a", camera="cam-0", event_id="ev-1")
            get = ch.unary_unary(
                "/vau.v1.Query/GetEvent",
                request_serializer=qpb.GetEventRequest.SerializeToString,
                response_deserializer=qpb.EventDetail.FromString,
            )
            deadline = time.monotonic() + 20
            while True:  # the explainer stores the event as it tails the ingest store
                try:
                    get(qpb.GetEventRequest(event=ref), timeout=5)
                    break
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.NOT_FOUND
                    assert time.monotonic() < deadline, "the event never reached the store"
                    time.sleep(0.1)
            ask = ch.unary_unary(
                "/vau.v1.Query/Ask",
                request_serializer=qpb.AskRequest.SerializeToString,
                response_deserializer=qpb.AskResponse.FromString,
            )
            req = qpb.AskRequest(event=ref, question="Was anyone hurt?")
            a = ask(req, timeout=60).answer
    finally:
        server.stop()
    fields = {
        "schema_version": a.schema_version, "title": a.title, "summary": a.summary,
        "anomaly": a.anomaly, "category": a.category, "start": a.start, "end": a.end,
        "confidence": a.confidence, "threat_level": a.threat_level, "llm": a.llm,
        "projector": a.projector or None, "visual_tokens": a.visual_tokens, "fallback": a.fallback,
    }  # fmt: skip
    e = Explanation.model_validate(fields)
    assert e.start == 2.0 and e.llm and not e.visual_tokens
