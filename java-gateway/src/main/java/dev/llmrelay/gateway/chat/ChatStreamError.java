package dev.llmrelay.gateway.chat;

/**
 * Why a stream did not finish.
 *
 * @param status            HTTP status that fits (an upstream 4xx as sent; 503 when no upstream could
 *                          serve; 502 when a started stream broke off)
 * @param type              OpenAI error type ({@code invalid_request_error}, {@code server_error}, ...)
 * @param code              short machine code ({@code upstream_unavailable}, {@code upstream_error}, ...)
 * @param message           for humans
 * @param upstreamBody      the upstream's own error body or error event (JSON text) to pass through, or null
 * @param retryAfterSeconds Retry-After to send, 0 for none
 * @param relayedAny        whether chunks already reached the listener before the error
 */
public record ChatStreamError(int status, String type, String code, String message, String upstreamBody,
        long retryAfterSeconds, boolean relayedAny) {
}
