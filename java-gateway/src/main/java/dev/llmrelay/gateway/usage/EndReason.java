package dev.llmrelay.gateway.usage;

/** Why a request ended, as stored in usage rows. */
public enum EndReason {
    stop, length, client_cancelled, upstream_error, rate_limited, unauthorized, bad_request,
    /** refused by degradation: a paused model, or shed at a pool's concurrency limit */
    degraded;

    /** The end reason for an upstream finish_reason ({@code length} stays, anything else is a stop). */
    public static EndReason ofFinishReason(String finishReason) {
        return "length".equals(finishReason) ? length : stop;
    }
}
