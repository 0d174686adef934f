"""Baseline (a): the naive server. One `model.generate` per request, one request at a time.

This is what ChatGLM3's own API demo does: a lock around `generate`, a TextIteratorStreamer
for the stream. It speaks just enough of the OpenAI chat-completions stream (content
chunks, a final usage chunk, `[DONE]`) for bench_serving.py's client.

    python naive_server.py --model-path DIR --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
import uuid

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer


def create_app(model_path: str) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    lock = asyncio.Lock()  # the whole point of the baseline: one generate at a time
    app = FastAPI()

    @app.get("/health")
    async def health():
        return {"status": "ready"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        ids = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        max_tokens = int(body.get("max_tokens") or 128)
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"

        def chunk(payload: dict) -> str:
            return "data: " + json.dumps({"id": chunk_id, "object": "chat.completion.chunk",
                                          "created": int(time.time()), "model": "naive", **payload}) + "\n\n"

        async def events():
            async with lock:
                streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
                result: dict = {}

                def run():
                    with torch.no_grad():
                        out = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False,
                                             streamer=streamer, pad_token_id=tokenizer.eos_token_id)
                    result["completion_tokens"] = int(out.shape[1] - ids["input_ids"].shape[1])

                thread = threading.Thread(target=run, daemon=True)
                thread.start()
                queue_get = asyncio.get_running_loop().run_in_executor
                iterator = iter(streamer)
                while True:
                    text = await queue_get(None, next, iterator, None)
                    if text is None:
                        break
                    if text:
                        yield chunk({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
                await asyncio.get_running_loop().run_in_executor(None, thread.join)
                n = result.get("completion_tokens", 0)
                finish = "length" if n >= max_tokens else "stop"
                yield chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
                yield chunk({"choices": [], "usage": {"prompt_tokens": int(ids["input_ids"].shape[1]),
                                                      "completion_tokens": n,
                                                      "total_tokens": int(ids["input_ids"].shape[1]) + n}})
            yield "data: [DONE]\n\n"

        if not body.get("stream"):
            return JSONResponse({"error": {"message": "only stream=true", "type": "invalid_request_error",
                                           "param": "stream", "code": None}}, status_code=400)
        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_path), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
