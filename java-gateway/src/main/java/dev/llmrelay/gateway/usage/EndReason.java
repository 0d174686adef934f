package dev.llmrelay.gateway.usage;

/** Why a request ended, as stored in usage rows. */
public enum EndReason {
    stop, length, client_cancelled, upstream_error, rate_limited, unauthorized, bad_request;

    /** The end reason for an upstream finish_reason ({@code length} stays, anything else is a stop). */
    public static EndReason ofFinishReason(String finishReason) {
        return "length".equals(finishReason) ? length : stop;
    }
}
