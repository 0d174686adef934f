package dev.llmrelay.gateway.chat;

/** Reads an upstream's {@code Retry-After} (delta-seconds form; model-service sends that). */
final class RetryAfter {

    /** Longest wait passed on, so a confused upstream cannot park clients for hours. */
    static final long MAX_SECONDS = 600;

    private RetryAfter() {
    }

    /** Seconds, or 0 when absent or not a number of seconds. */
    static long seconds(String header) {
        if (header == null) {
            return 0;
        }
        try {
            long seconds = Long.parseLong(header.strip());
            return seconds > 0 ? Math.min(seconds, MAX_SECONDS) : 0;
        } catch (NumberFormatException e) {
            return 0; // an HTTP date: fall back to the gateway's own value
        }
    }
}
