package dev.llmrelay.gateway.upstream;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import okhttp3.HttpUrl;

/** One model-service replica: its breaker, probed health, streams in flight and scraped load. */
public final class Upstream {

    private final String name;
    /** the model this replica's pool serves ({@code model=url} in GATEWAY_UPSTREAMS), or null: any model */
    private final String model;
    private final HttpUrl baseUrl;
    private final CircuitBreaker breaker;
    private final AtomicInteger inFlight = new AtomicInteger();
    /** calls sent since the last scrape: the replica's gauges do not show them yet */
    private final AtomicInteger sentSinceScrape = new AtomicInteger();
    /** the last scraped load, or null before the first scrape that found load gauges */
    private volatile UpstreamLoad load;
    /** until when (nanoTime) the replica said it is busy (503 + Retry-After); 0: it did not */
    private volatile long busyUntilNanos;
    /** optimistic until the first probe answers, so a fresh gateway can serve at once */
    private volatile boolean healthy = true;

    Upstream(String name, HttpUrl baseUrl, CircuitBreaker breaker) {
        this(name, null, baseUrl, breaker);
    }

    Upstream(String name, String model, HttpUrl baseUrl, CircuitBreaker breaker) {
        this.name = name;
        this.model = model;
        this.baseUrl = baseUrl;
        this.breaker = breaker;
    }

    /** The base URL as configured, used in logs, metrics and usage rows. */
    public String name() {
        return name;
    }

    /** The model of this replica's pool, or null when it is in the pool for every other model. */
    public String model() {
        return model;
    }

    /** {@code path} (e.g. {@code /v1/chat/completions}) on this upstream. */
    public HttpUrl url(String path) {
        HttpUrl.Builder builder = baseUrl.newBuilder();
        for (String segment : path.split("/")) {
            if (!segment.isEmpty()) {
                builder.addPathSegment(segment);
            }
        }
        return builder.build();
    }

    public CircuitBreaker breaker() {
        return breaker;
    }

    public int inFlight() {
        return inFlight.get();
    }

    public boolean healthy() {
        return healthy;
    }

    void healthy(boolean value) {
        healthy = value;
    }

    AtomicInteger inFlightCounter() {
        return inFlight;
    }

    /** The last scraped load if it is newer than {@code maxAgeNanos}, else null. */
    UpstreamLoad load(long nowNanos, long maxAgeNanos) {
        UpstreamLoad current = load;
        return current != null && nowNanos - current.scrapedAtNanos() <= maxAgeNanos ? current : null;
    }

    void load(UpstreamLoad scraped) {
        sentSinceScrape.set(0);
        load = scraped;
    }

    /** It answered 503 with Retry-After: others go first until then (it is still tried when all are busy). */
    void busyFor(long seconds) {
        busyUntilNanos = System.nanoTime() + TimeUnit.SECONDS.toNanos(Math.max(0, seconds));
    }

    /** It served an event: whatever it said before no longer holds. */
    void notBusy() {
        busyUntilNanos = 0;
    }

    boolean busy(long nowNanos) {
        long until = busyUntilNanos;
        return until != 0 && nowNanos - until < 0;
    }

    int sentSinceScrape() {
        return sentSinceScrape.get();
    }

    void sent() {
        sentSinceScrape.incrementAndGet();
    }

    @Override
    public String toString() {
        return name;
    }
}
