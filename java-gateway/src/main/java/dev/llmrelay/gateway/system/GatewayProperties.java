package dev.llmrelay.gateway.system;

import java.time.Duration;
import java.util.List;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Everything an operator sets for the gateway, bound from {@code gateway.*} (env {@code GATEWAY_*},
 * see docs/contracts.md and docs/gateway.md).
 */
@ConfigurationProperties("gateway")
public record GatewayProperties(
        @DefaultValue("http://127.0.0.1:6006") List<String> upstreams,
        String upstreamApiKey,
        String adminToken,
        @DefaultValue List<String> corsOrigins,
        @DefaultValue("../web") String webDir,
        String bootstrapKey,
        @DefaultValue("60") int defaultRequestsPerMinute,
        @DefaultValue("100000") int defaultTokensPerMinute,
        @DefaultValue("4") int defaultMaxConcurrentStreams,
        /* completion budget reserved when a request names no max_tokens */
        @DefaultValue("1024") int defaultMaxTokensEstimate,
        /* most choices (n) one request may ask for: the upstreams' own bound (the model-service's MODEL_SERVICE_MAX_N) */
        @DefaultValue("4") int maxChoices,
        @DefaultValue Timeouts timeouts,
        @DefaultValue Breaker breaker,
        @DefaultValue Health health,
        @DefaultValue Routing routing,
        @DefaultValue Limits limits,
        @DefaultValue Redis redis,
        @DefaultValue Degrade degrade,
        /* how long an authenticated key is trusted without a database read; a change made on this instance
           applies at once, one made on another instance within this */
        @DefaultValue("1s") java.time.Duration keyCacheTtl,
        @DefaultValue Usage usage) {

    /**
     * @param retention how long request rows are kept (the hourly rollups stay); older rows are deleted in
     *                  batches every hour. 0 keeps them forever.
     */
    public record Usage(@DefaultValue("90d") Duration retention) {
    }

    /**
     * @param connect TCP connect to an upstream
     * @param read    longest silence on an upstream call (must exceed the worst time-to-first-token, and a
     *                non-stream answer's whole generation); past it the client gets 504 upstream_timeout
     * @param stream  longest life of one client stream (SseEmitter timeout)
     * @param heartbeat interval of {@code : ping} comments that reveal dead clients
     * @param retryAfter Retry-After sent when no upstream can serve
     */
    public record Timeouts(
            @DefaultValue("5s") Duration connect,
            @DefaultValue("300s") Duration read,
            @DefaultValue("30m") Duration stream,
            @DefaultValue("15s") Duration heartbeat,
            @DefaultValue("5s") Duration retryAfter) {
    }

    /**
     * Circuit breaker per upstream (count-based window). Only upstream faults count as failures: a busy
     * refusal (503 + Retry-After), a 5xx the request itself causes on every replica, and a read timeout
     * do not (docs/gateway.md).
     *
     * @param slowOpenThreshold   a call whose upstream took longer than this to answer with its response
     *                            headers is slow; how long a stream then runs is never measured
     * @param slowOpenRatePercent share of slow calls in the window that opens the breaker
     */
    public record Breaker(
            @DefaultValue("10") int slidingWindowSize,
            @DefaultValue("5") int minimumCalls,
            @DefaultValue("50") float failureRatePercent,
            @DefaultValue("10s") Duration waitInOpen,
            @DefaultValue("1") int halfOpenCalls,
            @DefaultValue("30s") Duration slowOpenThreshold,
            @DefaultValue("100") float slowOpenRatePercent) {
    }

    /** Active probing of each upstream's /health; interval 0 turns probing off. */
    public record Health(
            @DefaultValue("5s") Duration interval,
            @DefaultValue("2s") Duration timeout) {
    }

    /**
     * Load-aware upstream choice (docs/gateway.md). Each upstream's {@code /metrics} is scraped every
     * {@code scrapeInterval} (0 turns scraping off: the pool then balances on its own in-flight counts);
     * a load older than {@code metricsMaxAge} (scrapes failing) is ignored.
     *
     * @param affinityMaxWaiting a replica with more requests waiting than this is overloaded: requests
     *                           with an affinity key (a conversation, an OpenAI {@code user}) leave it
     * @param affinityMaxKvCache a replica whose KV cache use (0..1) reaches this is overloaded too
     */
    public record Routing(
            @DefaultValue("2s") Duration scrapeInterval,
            @DefaultValue("1s") Duration scrapeTimeout,
            @DefaultValue("10s") Duration metricsMaxAge,
            @DefaultValue("4") int affinityMaxWaiting,
            @DefaultValue("0.95") double affinityMaxKvCache) {
    }

    /**
     * Where per-key limit state lives.
     *
     * @param store          {@code memory} (this instance only) or {@code redis} (shared by all instances)
     * @param onStoreFailure what admission does when Redis does not answer in time: {@code fail-open} admits
     *                       on this instance's own counters, {@code fail-closed} answers 503 with Retry-After
     *                       ({@link Timeouts#retryAfter})
     * @param streamLease    life of a concurrent-stream slot in Redis, renewed every third of it while the
     *                       stream lives: a slot of an instance that died frees itself within this time
     */
    public record Limits(
            @DefaultValue("memory") Store store,
            @DefaultValue("fail-open") StoreFailure onStoreFailure,
            @DefaultValue("30s") Duration streamLease) {

        public enum Store { MEMORY, REDIS }

        public enum StoreFailure { FAIL_OPEN, FAIL_CLOSED }
    }

    /**
     * @param url     Redis URI ({@code redis://host:port/db}, {@code rediss://} for TLS)
     * @param timeout bound on connecting and on each command; past it the limit-store failure policy applies
     */
    public record Redis(
            @DefaultValue("redis://127.0.0.1:6379") String url,
            @DefaultValue("500ms") Duration timeout) {
    }

    /**
     * Graceful degradation (degrade/, docs/operations.md). Each upstream pool admits at most an adaptive
     * number of concurrent streams (Gradient2 fed with time to first token), kept within
     * [{@code minLimit}, {@code maxLimit}]; past it a request is shed at once with 503 and
     * {@code Retry-After: shedRetryAfter}. {@code minLimit == maxLimit} pins the limit. Off by default
     * ({@code adaptiveLimit}): the limit only knows a pool's TTFT baseline after traffic, so an operator
     * turns it on with bounds measured for the deployment (docs/operations.md); slots are counted either way.
     * The switches and fallback routes are live policies (gateway.policy.poll-interval), not settings.
     *
     * @param rttTolerance how much slower than its long-term average a time to first token may get before
     *                     the limit shrinks (Gradient2's tolerance; the library's default 1.5 let admitted
     *                     streams' TTFT reach 2.5x the unloaded one in bench/degrade_overload.py, 1.1 kept 1.6x)
     * @param queueSize    how many streams past the estimate the limit probes with (Gradient2's queue size;
     *                     the library's default is 4, meant for short RPCs: each extra LLM stream waits a
     *                     whole answer in the model's queue)
     */
    public record Degrade(
            @DefaultValue("false") boolean adaptiveLimit,
            @DefaultValue("64") int initialLimit,
            @DefaultValue("16") int minLimit,
            @DefaultValue("1024") int maxLimit,
            @DefaultValue("1s") Duration shedRetryAfter,
            @DefaultValue("1.1") double rttTolerance,
            @DefaultValue("1") int queueSize) {
    }
}
