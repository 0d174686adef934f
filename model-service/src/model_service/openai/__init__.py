"""The OpenAI-compatible surface, one package per endpoint as vLLM lays out its entrypoints:
`chat_completion/` and `completion/` each hold their router (HTTP only), serving class (request -> engine ->
response) and protocol (the schemas); `common/` what they share (the serving base, SSE, the OpenAPI document,
shared schemas); `models/` lists the model; `router.py` puts /v1 together. Kept import-free here: errors.py
imports the shared schemas, and the serving modules import errors.py."""
