from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..common.openapi import COMPLETION_STREAM_EVENT, error
from .protocol import CompletionRequest, CompletionResponse
from .serving import OpenAIServingCompletion


def get_serving(request: Request) -> OpenAIServingCompletion:
    return request.app.state.serving_completion


ServingCompletionDep = Annotated[OpenAIServingCompletion, Depends(get_serving)]
router = APIRouter(tags=["completions"])


@router.post("/completions", response_model=CompletionResponse, responses={
    200: {"description": "The text completion: JSON, or with `stream: true` an event stream of `text_completion` "
                         "chunks ending in `data: [DONE]`",
          "content": {"text/event-stream": {"itemSchema": COMPLETION_STREAM_EVENT}}},
    400: error("Invalid request: a field out of range, an unsupported feature (suffix, logprobs, several "
               "prompts...), or over the model's context length"),
    404: error("The named model is not served here"),
    413: error("Request body too large"),
    500: error("Generation failed"),
    503: error("The model is not ready or the queue is full; see Retry-After"),
})
async def create_completion(body: CompletionRequest, request: Request, serving: ServingCompletionDep) -> Response:
    """Legacy text completion: the prompt is tokenized as sent, without the chat template."""
    return await serving.create_completion(body, request)
