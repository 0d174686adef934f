"""The `n` choices of one request: n engine sequences sharing the prompt, read as one stream."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from ...engine.base import GenerationOutput, RequestStream


class ChoiceStreams:
    """Yields (choice index, output) in the order the engine produces them, until every choice ended."""

    def __init__(self, streams: list[RequestStream]) -> None:
        self.streams = streams

    def __len__(self) -> int:
        return len(self.streams)

    @property
    def finished(self) -> bool:
        return all(s.finished for s in self.streams)

    def cancel(self) -> None:
        for stream in self.streams:
            stream.cancel()

    async def __aiter__(self) -> AsyncIterator[tuple[int, GenerationOutput]]:
        if len(self.streams) == 1:  # the common case needs no merging
            async for out in self.streams[0]:
                yield 0, out
            return
        merged: asyncio.Queue[tuple[int, GenerationOutput]] = asyncio.Queue()

        async def pump(index: int, stream: RequestStream) -> None:
            async for out in stream:
                merged.put_nowait((index, out))

        pumps = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(self.streams)]
        try:
            running = len(self.streams)
            while running:
                index, out = await merged.get()
                if out.finish_reason is not None:
                    running -= 1
                yield index, out
        finally:
            for task in pumps:
                task.cancel()
