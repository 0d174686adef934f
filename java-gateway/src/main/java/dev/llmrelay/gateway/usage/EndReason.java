package dev.llmrelay.gateway.usage;

/** Why a request ended, as stored in usage rows. */
public enum EndReason {
    stop, length, client_cancelled, upstream_error, rate_limited, unauthorized, bad_request,
    /** The content filter refused the prompt or ended the answer. */
    content_filter,
    /** refused by degradation: a paused model, or shed at a pool's concurrency limit */
    degraded,
    /** refused because the key's token budget for the period is spent */
    budget_exhausted;

    /** The end reason for a finish_reason ({@code length} and {@code content_filter} stay, anything else is a stop). */
    public static EndReason ofFinishReason(String finishReason) {
        return "length".equals(finishReason) ? length : "content_filter".equals(finishReason) ? content_filter : stop;
    }
}
