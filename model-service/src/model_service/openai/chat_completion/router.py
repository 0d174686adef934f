from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..common.openapi import CHAT_STREAM_EVENT, error
from .protocol import ChatCompletionRequest, ChatCompletionResponse
from .serving import OpenAIServingChat


def get_serving(request: Request) -> OpenAIServingChat:
    return request.app.state.serving_chat


ServingChatDep = Annotated[OpenAIServingChat, Depends(get_serving)]
router = APIRouter(tags=["chat"])


@router.post("/chat/completions", response_model=ChatCompletionResponse, responses={
    200: {"description": "The completion: JSON, or with `stream: true` an event stream of chunks ending in "
                         "`data: [DONE]`",
          "content": {"text/event-stream": {"itemSchema": CHAT_STREAM_EVENT}}},
    400: error("Invalid request: a field out of range, bad messages, or over the model's context length"),
    404: error("The named model is not served here"),
    413: error("Request body too large"),
    500: error("Generation failed"),
    503: error("The model is not ready or the queue is full; see Retry-After"),
})
async def create_chat_completion(body: ChatCompletionRequest, request: Request, serving: ServingChatDep) -> Response:
    return await serving.create_chat_completion(body, request)
