from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...protocol import ChatCompletionRequest, ChatCompletionResponse
from ..deps import ServingChatDep

router = APIRouter(tags=["chat"])


@router.post("/chat/completions", response_model=ChatCompletionResponse)
async def create_chat_completion(body: ChatCompletionRequest, request: Request, serving: ServingChatDep) -> Response:
    return await serving.create_chat_completion(body, request)
