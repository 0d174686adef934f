"""MODEL_SERVICE_ENGINE=serial (the path remote-code models such as ChatGLM3-6B take) serves the same API."""

from __future__ import annotations

import openai

from stack import free_port, start_model_service


def test_serial_engine_streams_through_the_service():
    with start_model_service(free_port(), {"MODEL_SERVICE_ENGINE": "serial"}, timeout_s=180) as service:
        assert "serial engine" in service.log_tail()
        client = openai.OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        chunks = list(client.chat.completions.create(
            model="smollm2-135m-instruct", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "What is the capital of France?"}]))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "Paris" in text
        assert chunks[-1].usage.completion_tokens > 0
