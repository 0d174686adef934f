package dev.llmrelay.gateway.upstream;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One call's hold on an upstream: a breaker permission and an in-flight slot. Exactly one of
 * {@link #succeeded}, {@link #failed} or {@link #released} takes effect; later calls are ignored.
 * The duration the breaker sees is the time to {@link #opened} (response headers), never a stream's length.
 * A stream is judged when it starts ({@link #started}: its first event) and again only if it breaks:
 * so a half-open breaker's trial call ends at the trial stream's first event, not at its last.
 */
public final class UpstreamLease {

    private final Upstream upstream;
    private final long startNanos = System.nanoTime();
    private final AtomicBoolean done = new AtomicBoolean();
    private final AtomicBoolean judged = new AtomicBoolean();
    private volatile long openedNanos;

    UpstreamLease(Upstream upstream) {
        this.upstream = upstream;
    }

    public Upstream upstream() {
        return upstream;
    }

    /** The upstream answered with its response headers; the breaker's slow-call rule measures up to here. */
    public void opened() {
        if (openedNanos == 0) {
            openedNanos = System.nanoTime();
        }
    }

    /**
     * The stream's first event arrived: the upstream works, and the breaker hears so now (its permission
     * is used up); the in-flight slot stays taken until the stream ends.
     */
    public void started() {
        opened();
        upstream.notBusy();
        if (!done.get() && judged.compareAndSet(false, true)) {
            upstream.breaker().onSuccess(openedNanos - startNanos, TimeUnit.NANOSECONDS);
        }
    }

    /**
     * The upstream answered properly (a 2xx, or a 4xx that is the client's fault). A call never marked
     * {@link #opened} (a non-stream completion, whose headers come after the whole generation that the
     * client's max_tokens sizes) counts as fast.
     */
    public void succeeded() {
        if (done.compareAndSet(false, true)) {
            if (judged.compareAndSet(false, true)) {
                upstream.breaker().onSuccess(openedNanos == 0 ? 0 : openedNanos - startNanos, TimeUnit.NANOSECONDS);
            }
            upstream.inFlightCounter().decrementAndGet();
        }
    }

    /**
     * Connect failure, 5xx, or a stream that broke off: counts against the breaker (after {@link #started},
     * as one more outcome beside the start's success).
     */
    public void failed(Throwable cause) {
        if (done.compareAndSet(false, true)) {
            judged.set(true);
            upstream.breaker().onError(elapsed(), TimeUnit.NANOSECONDS,
                    cause != null ? cause : new UpstreamFailure("upstream failed"));
            upstream.inFlightCounter().decrementAndGet();
        }
    }

    /**
     * The call says nothing about the upstream's health: the client went away, the upstream was busy
     * (503 + Retry-After), the request itself caused the error, or the read timeout passed.
     */
    public void released() {
        if (done.compareAndSet(false, true)) {
            if (judged.compareAndSet(false, true)) {
                upstream.breaker().releasePermission(); // after started() the permission is already used
            }
            upstream.inFlightCounter().decrementAndGet();
        }
    }

    /** The upstream answered 503 with Retry-After: released, and passed over by new requests until then. */
    public void busy(long retryAfterSeconds) {
        upstream.busyFor(retryAfterSeconds);
        released();
    }

    private long elapsed() {
        return (openedNanos != 0 ? openedNanos : System.nanoTime()) - startNanos;
    }

    /** A failure without an exception of its own (an HTTP 5xx, a stream without its end). */
    public static final class UpstreamFailure extends RuntimeException {
        public UpstreamFailure(String message) {
            super(message, null, false, false);
        }
    }
}
