package dev.llmrelay.gateway.conversation;

import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;

/**
 * Starts one streamed chat completion for a browser reply, with the same limits, upstream
 * choice, failover, usage accounting and cancellation as {@code /v1}. Refusals that happen
 * before anything streams (rate limit: 429, no upstream: 503) are thrown by {@link #start} as
 * problems with Retry-After; what happens later arrives at the listener, from another thread.
 */
interface ReplySource {

    /** {@code conversationId}: the turns of one conversation prefer one replica (its prompt cache). */
    ReplyHandle start(ApiKey key, ObjectNode openAiRequest, String requestId, String conversationId,
            ReplyListener listener);

    /** Events of one streamed completion; exactly one of onFinish / onError ends it. */
    interface ReplyListener {

        void onToken(String text);

        /** @param usage the upstream's usage object ({prompt_tokens, completion_tokens, ...}), or null */
        void onFinish(String finishReason, Object usage);

        /** @param retryAfterSeconds when trying again may help (no upstream could serve), else 0 */
        void onError(String code, String message, long retryAfterSeconds);
    }

    /** Stops the upstream generation (idempotent). */
    interface ReplyHandle {

        void cancel();

        /** {@code <primary>-><fallback>} when a fallback route serves this reply (degradation), else null. */
        default String fallback() {
            return null;
        }
    }
}
