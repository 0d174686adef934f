package dev.llmrelay.gateway.usage;

/** Why a request ended, as stored in usage rows. */
public enum EndReason {
    stop, length, client_cancelled, upstream_error, rate_limited, unauthorized, bad_request,
    /** The content filter refused the prompt or ended the answer. */
    content_filter;

    /** The end reason for a finish_reason ({@code length} and {@code content_filter} stay, anything else is a stop). */
    public static EndReason ofFinishReason(String finishReason) {
        return "length".equals(finishReason) ? length : "content_filter".equals(finishReason) ? content_filter : stop;
    }
}
