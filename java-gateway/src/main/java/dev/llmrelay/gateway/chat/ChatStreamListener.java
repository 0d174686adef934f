package dev.llmrelay.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Receives one streamed chat completion from {@link ChatStreamService}. Callbacks come from an OkHttp
 * thread, one at a time, in stream order. Exactly one of {@link #onFinish} or {@link #onError} ends the
 * stream, unless the caller ended it with {@link ChatStreamHandle#cancel()}: after that nothing more
 * arrives.
 */
public interface ChatStreamListener {

    /** An upstream accepted the stream. (A retry on another upstream before any chunk does not call it again.) */
    default void onOpen() {
    }

    /**
     * One {@code chat.completion.chunk} as the upstream sent it ({@code data} is the exact JSON text).
     * The usage-only chunk arrives here only when the client asked for {@code stream_options.include_usage}.
     */
    default void onChunk(String data, JsonNode chunk) {
    }

    /** The content text of a chunk (non-empty), for callers that only want the text. */
    default void onDelta(String text) {
    }

    /** The upstream finished ({@code data: [DONE]}); {@code finishReason} is {@code stop}, {@code length}, ... */
    void onFinish(String finishReason, ChatUsage usage);

    /** The stream could not start or broke off; see {@link ChatStreamError#relayedAny()}. */
    void onError(ChatStreamError error);
}
