"""A mock upstream that speaks every API the gateway sends upstream, by path:

- `/v1/chat/completions` (OpenAI Chat Completions), `/v1/responses` (OpenAI Responses),
  `/v1/embeddings` (OpenAI Embeddings), `/v1/messages` and `/v1/messages/count_tokens`
  (Anthropic), each non-streaming and, where the API streams, as SSE.
- A model id starting with `down` fails: 529 `overloaded_error` on Anthropic paths, 429
  `rate_limit_exceeded` on OpenAI paths (no Retry-After, so every request fails over).
- A request offering a `get_weather` tool is answered with a call of it (until the
  conversation holds its result), in every API and both streaming and not; agents' own
  tools are never called.
- A streamed answer for a model id starting with `cut` sends the first two words and ends
  the stream there (no finish reason, no end event); a continuation of it (its last message
  the assistant's text so far, spec §12) gets the rest and a proper end.

Every request is recorded (path, headers, JSON body) so tests can check what the gateway
sent. Plain `http.server` in a thread; answers are close-delimited HTTP/1.0.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEXT = "Hello from the upstream."
WORDS = ["Hello", " from", " the", " upstream."]


def _sse(events):
    out = []
    for name, data in events:
        if name:
            out.append(f"event: {name}\n")
        out.append(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return "".join(out).encode()


def _tool(req):
    """`get_weather`, when the request offers a tool of that name and the conversation does
    not already hold its result; else `None` (an agent's own tools are never called)."""
    names = [t.get("name") or (t.get("function") or {}).get("name") for t in req.get("tools") or []]
    if "get_weather" not in names:
        return None
    if "Sunny" in json.dumps(req.get("messages") or req.get("input") or []):
        return None
    return "get_weather"


def _stream_words(req):
    """The words a streamed answer sends, and whether it ends properly (see the module docs
    for `cut` models)."""
    if not str(req.get("model", "")).startswith("cut"):
        return WORDS, True
    messages = req.get("messages") or []
    if messages and messages[-1].get("role") == "assistant":
        return WORDS[2:], True
    return WORDS[:2], False


# ---------------------------------------------------------------- Chat Completions

def chat_json(req):
    tool = _tool(req)
    message = {"role": "assistant", "content": TEXT}
    finish = "stop"
    if tool:
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": '{"city": "Paris"}'}}]}
        finish = "tool_calls"
    return {"id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": req.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}


def chat_sse(req):
    def chunk(delta, finish=None, usage=None):
        c = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": req.get("model"),
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:
            c["choices"] = []
            c["usage"] = usage
        return (None, c)
    events = [chunk({"role": "assistant", "content": ""})]
    tool = _tool(req)
    if tool:
        events.append(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                             "function": {"name": tool, "arguments": ""}}]}))
        events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}))
        events.append(chunk({}, "tool_calls"))
    else:
        words, complete = _stream_words(req)
        events += [chunk({"content": w}) for w in words]
        if not complete:
            return _sse(events)
        events.append(chunk({}, "stop"))
    if (req.get("stream_options") or {}).get("include_usage"):
        events.append(chunk({}, usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}))
    events.append((None, "[DONE]"))
    return _sse(events)


# ---------------------------------------------------------------- Anthropic Messages

def messages_json(req):
    tool = _tool(req)
    content = [{"type": "text", "text": TEXT}]
    stop = "end_turn"
    if tool:
        content = [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": {"city": "Paris"}}]
        stop = "tool_use"
    return {"id": "msg_mock", "type": "message", "role": "assistant", "model": req.get("model"),
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 4}}


def messages_sse(req):
    tool = _tool(req)
    start = {"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
             "model": req.get("model"), "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": 9, "output_tokens": 1}}}
    events = [("message_start", start)]
    if tool:
        events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                       "content_block": {"type": "tool_use", "id": "toolu_1", "name": tool, "input": {}}}))
        events.append(("ping", {"type": "ping"}))
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'}}))
        stop = "tool_use"
    else:
        events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}))
        events.append(("ping", {"type": "ping"}))
        words, complete = _stream_words(req)
        for w in words:
            events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": w}}))
        if not complete:
            return _sse(events)
        stop = "end_turn"
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                   "usage": {"output_tokens": 4}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return _sse(events)


# ---------------------------------------------------------------- OpenAI Responses

def _message_item(text, status="completed"):
    return {"id": "msg_mock", "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if text is not None else []}


def _response(req, status, output):
    return {"id": "resp_mock", "object": "response", "created_at": 0, "status": status, "model": req.get("model"),
            "output": output, "usage": {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 13},
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "store": False,
            "text": {"format": {"type": "text"}}, "error": None, "incomplete_details": None}


CALL_ARGUMENTS = '{"city": "Paris"}'


def _call_item(tool, arguments, status="completed"):
    return {"id": "fc_mock", "type": "function_call", "status": status, "call_id": "call_1",
            "name": tool, "arguments": arguments}


def responses_json(req):
    tool = _tool(req)
    if tool:
        return _response(req, "completed", [_call_item(tool, CALL_ARGUMENTS)])
    return _response(req, "completed", [_message_item(TEXT)])


def responses_sse(req):
    seq = iter(range(1000))
    def ev(kind, **fields):
        return (kind, {"type": kind, "sequence_number": next(seq), **fields})
    tool = _tool(req)
    if tool:
        return _sse([
            ev("response.created", response=_response(req, "in_progress", [])),
            ev("response.in_progress", response=_response(req, "in_progress", [])),
            ev("response.output_item.added", output_index=0, item=_call_item(tool, "", "in_progress")),
            ev("response.function_call_arguments.delta", output_index=0, item_id="fc_mock", delta='{"city": '),
            ev("response.function_call_arguments.delta", output_index=0, item_id="fc_mock", delta='"Paris"}'),
            ev("response.function_call_arguments.done", output_index=0, item_id="fc_mock", name=tool,
               arguments=CALL_ARGUMENTS),
            ev("response.output_item.done", output_index=0, item=_call_item(tool, CALL_ARGUMENTS)),
            ev("response.completed", response=responses_json(req)),
        ])
    part = {"type": "output_text", "text": "", "annotations": []}
    events = [
        ev("response.created", response=_response(req, "in_progress", [])),
        ev("response.in_progress", response=_response(req, "in_progress", [])),
        ev("response.output_item.added", output_index=0, item=_message_item(None, "in_progress")),
        ev("response.content_part.added", output_index=0, item_id="msg_mock", content_index=0, part=part),
    ]
    for w in WORDS:
        events.append(ev("response.output_text.delta", output_index=0, item_id="msg_mock", content_index=0,
                         delta=w, logprobs=[]))
    done_part = {"type": "output_text", "text": TEXT, "annotations": []}
    events += [
        ev("response.output_text.done", output_index=0, item_id="msg_mock", content_index=0, text=TEXT, logprobs=[]),
        ev("response.content_part.done", output_index=0, item_id="msg_mock", content_index=0, part=done_part),
        ev("response.output_item.done", output_index=0, item=_message_item(TEXT)),
        ev("response.completed", response=responses_json(req)),
    ]
    return _sse(events)


# ---------------------------------------------------------------- the server

class MockUpstream:
    """Starts on an ephemeral port; `requests` lists what it received."""

    def __init__(self):
        self.requests = []
        self.start = 0
        self.lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    req = json.loads(raw or b"{}")
                except ValueError:
                    req = {}
                with mock.lock:
                    mock.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": req})
                mock.answer(self, req)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def received(self, path_prefix):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    def begin_test(self):
        """From now on `sent` and `only` see only the requests received after this call."""
        with self.lock:
            self.start = len(self.requests)

    def sent(self, model_id):
        """The requests for `model_id` (the id after the prefix) since `begin_test`."""
        with self.lock:
            return [r for r in self.requests[self.start:] if r["body"].get("model") == model_id]

    def only(self, model_id):
        """The one request for `model_id` since `begin_test`; fails unless there is exactly one."""
        got = self.sent(model_id)
        assert len(got) == 1, f"{len(got)} requests for {model_id}: {[r['path'] for r in got]}"
        return got[0]

    @staticmethod
    def _send(h, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("content-type", content_type)
        if content_type == "application/json":
            h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def answer(self, h, req):
        path = h.path.split("?")[0]
        model = str(req.get("model", ""))
        anthropic = path.startswith("/v1/messages")
        if model.startswith("down"):
            if anthropic:
                return self._send(h, 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded (mock)"}})
            return self._send(h, 429, {"error": {"message": "Rate limit reached (mock)", "type": "requests",
                                                 "code": "rate_limit_exceeded"}})
        stream = bool(req.get("stream"))
        sse = "text/event-stream"
        if path == "/v1/chat/completions":
            return self._send(h, 200, chat_sse(req), sse) if stream else self._send(h, 200, chat_json(req))
        if path == "/v1/messages":
            return self._send(h, 200, messages_sse(req), sse) if stream else self._send(h, 200, messages_json(req))
        if path == "/v1/messages/count_tokens":
            return self._send(h, 200, {"input_tokens": 21})
        if path == "/v1/responses":
            return self._send(h, 200, responses_sse(req), sse) if stream else self._send(h, 200, responses_json(req))
        if path == "/v1/embeddings":
            inputs = req.get("input")
            n = len(inputs) if isinstance(inputs, list) else 1
            return self._send(h, 200, {"object": "list", "model": model, "usage": {"prompt_tokens": n, "total_tokens": n},
                                       "data": [{"object": "embedding", "index": i, "embedding": [0.5, -0.25, 0.125]}
                                                for i in range(n)]})
        return self._send(h, 404, {"error": {"message": f"no such path {h.path}", "type": "invalid_request_error"}})
