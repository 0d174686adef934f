package dev.llmrelay.gateway.conversation;

import java.time.Instant;

/**
 * One stored message of a conversation.
 *
 * @param status       complete, streaming (a reply being generated), stopped (cancelled, partial
 *                     text kept) or error
 * @param sessionHash  the browser session that may open and cancel this reply's stream
 */
record ChatMessage(String id, String conversationId, int seq, String role, String content, String status,
        String finishReason, String errorMessage, String sessionHash, Integer promptTokens,
        Integer completionTokens, Instant createdAt) {

    static final String USER = "user";
    static final String ASSISTANT = "assistant";

    static final String COMPLETE = "complete";
    static final String STREAMING = "streaming";
    static final String STOPPED = "stopped";
    static final String ERROR = "error";

    ChatMessage withContent(String newContent) {
        return new ChatMessage(id, conversationId, seq, role, newContent, status, finishReason, errorMessage,
                sessionHash, promptTokens, completionTokens, createdAt);
    }
}
