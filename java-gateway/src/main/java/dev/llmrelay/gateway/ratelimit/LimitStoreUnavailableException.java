package dev.llmrelay.gateway.ratelimit;

/** The shared limit store did not answer within its bounded timeout; the failure policy decides. */
class LimitStoreUnavailableException extends RuntimeException {

    LimitStoreUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
