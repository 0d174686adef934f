package dev.llmrelay.gateway.upstream;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One call's hold on an upstream: a breaker permission and an in-flight slot. Exactly one of
 * {@link #succeeded}, {@link #failed} or {@link #abandoned} takes effect; later calls are ignored.
 */
public final class UpstreamLease {

    private final Upstream upstream;
    private final long startNanos = System.nanoTime();
    private final AtomicBoolean done = new AtomicBoolean();

    UpstreamLease(Upstream upstream) {
        this.upstream = upstream;
    }

    public Upstream upstream() {
        return upstream;
    }

    /** The upstream answered properly (a 2xx stream, or a 4xx that is the client's fault). */
    public void succeeded() {
        if (done.compareAndSet(false, true)) {
            upstream.breaker().onSuccess(elapsed(), TimeUnit.NANOSECONDS);
            upstream.inFlightCounter().decrementAndGet();
        }
    }

    /** Connect failure, 5xx, or a stream that broke off: counts against the breaker. */
    public void failed(Throwable cause) {
        if (done.compareAndSet(false, true)) {
            upstream.breaker().onError(elapsed(), TimeUnit.NANOSECONDS,
                    cause != null ? cause : new UpstreamFailure("upstream failed"));
            upstream.inFlightCounter().decrementAndGet();
        }
    }

    /** The client went away: says nothing about the upstream's health. */
    public void abandoned() {
        if (done.compareAndSet(false, true)) {
            upstream.breaker().releasePermission();
            upstream.inFlightCounter().decrementAndGet();
        }
    }

    private long elapsed() {
        return System.nanoTime() - startNanos;
    }

    /** A failure without an exception of its own (an HTTP 5xx, a stream without its end). */
    public static final class UpstreamFailure extends RuntimeException {
        public UpstreamFailure(String message) {
            super(message, null, false, false);
        }
    }
}
