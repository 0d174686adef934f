package dev.llmrelay.gateway.chat;

import java.time.Duration;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.fasterxml.jackson.databind.JsonNode;

import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.AttemptOutcome;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;

/**
 * One request's way through the replicas, shared by streams, non-stream completions and model lists:
 * which upstream to try next, how each failed attempt's lease is settled with its breaker, and the
 * error the client gets when it stops.
 *
 * <ul>
 * <li>busy (503 + Retry-After): released, next replica; when all are busy, 503 with the upstream's wait.
 * <li>an error the model-service reports (5xx in OpenAI shape, or an error event before any content):
 * held undecided and asked of the next replica. The same error again means the request causes it: both
 * leases are released, nothing more is tried, and the error is passed on. Another replica serving (or
 * failing differently) means the first replica was at fault: it counts as a failure. Without a second
 * replica to ask, it counts as a failure and is passed on.
 * <li>read timeout: released, not retried (the replica may still be working on it, another would start
 * over and double the load), 504 naming the limit.
 * <li>anything else before the first byte: a breaker failure, next replica.
 * </ul>
 */
final class Failover {

    private static final Logger log = LoggerFactory.getLogger(Failover.class);

    private final UpstreamPool pool;
    private final Duration readTimeout;
    private final String requestId;
    /** the replica preference this request carries (UpstreamPool#acquire), or null */
    private final String affinityKey;
    private final Set<Upstream> tried = new HashSet<>();
    private long busyRetryAfter;
    private String lastFault;
    /** a replica that reported an error, not yet judged; with the error it reported */
    private UpstreamLease undecided;
    private AttemptOutcome undecidedOutcome;

    Failover(UpstreamPool pool, Duration readTimeout, String requestId) {
        this(pool, readTimeout, requestId, null, null);
    }

    /** Only {@code model}'s pool is tried ({@link UpstreamPool#outsidePool}), preferring {@code affinityKey}'s replica. */
    Failover(UpstreamPool pool, Duration readTimeout, String requestId, String affinityKey, String model) {
        this.pool = pool;
        this.readTimeout = readTimeout;
        this.requestId = requestId;
        this.affinityKey = affinityKey;
        this.tried.addAll(pool.outsidePool(model));
    }

    /** A lease on the next upstream to try, or empty when none is left ({@link #unavailable}). */
    synchronized Optional<UpstreamLease> next() {
        Optional<UpstreamLease> next = pool.acquire(tried, affinityKey);
        next.ifPresent(lease -> tried.add(lease.upstream()));
        return next;
    }

    /**
     * Settles {@code lease} after an attempt that did not serve ({@code outcome} is not OK). Empty: try
     * {@link #next}; otherwise stop with this error.
     */
    synchronized Optional<ChatStreamError> settle(UpstreamLease lease, AttemptOutcome outcome) {
        switch (outcome.kind()) {
            case CLIENT_ERROR -> {
                lease.succeeded();
                judgeUndecidedAsFault();
                return Optional.of(passOn(outcome, "invalid_request_error", "upstream_rejected",
                        "The model-service refused the request"));
            }
            case BUSY -> {
                lease.busy(outcome.retryAfter()); // new requests try the others first until its wait passes
                busyRetryAfter = Math.max(busyRetryAfter, outcome.retryAfter());
                log.info("request {}: {} is busy; trying another upstream", requestId, lease.upstream().name());
                return Optional.empty();
            }
            case TIMEOUT -> {
                lease.released();
                judgeUndecidedAsFault();
                log.info("request {}: no answer from {} within {}", requestId, lease.upstream().name(),
                        limit(readTimeout));
                return Optional.of(timeout(false));
            }
            case ERROR_REPORTED -> {
                if (undecided != null && undecidedOutcome.sameErrorAs(outcome)) {
                    undecided.released();
                    lease.released();
                    undecided = null;
                    log.info("request {}: two replicas report the same error, so the request causes it: {}",
                            requestId, outcome.description());
                    return Optional.of(passOn(outcome, "server_error", "upstream_error",
                            "The model-service reported an error"));
                }
                judgeUndecidedAsFault();
                undecided = lease;
                undecidedOutcome = outcome;
                lastFault = outcome.description();
                return Optional.empty();
            }
            default -> {
                lease.failed(outcome.failure());
                lastFault = outcome.description();
                log.info("request {}: trying another upstream after {}", requestId, outcome.description());
                return Optional.empty();
            }
        }
    }

    /** An upstream served: an error another replica reported for this request was that replica's fault. */
    synchronized void served() {
        judgeUndecidedAsFault();
    }

    /** The client left: an undecided error is left undecided (neither a failure nor a success). */
    synchronized void abandoned() {
        if (undecided != null) {
            undecided.released();
            undecided = null;
        }
    }

    /** The error when {@link #next} found no upstream to try. */
    synchronized ChatStreamError unavailable() {
        if (undecided != null) {
            // no second replica could tell whether the request causes it: the replica's failure
            AttemptOutcome outcome = undecidedOutcome;
            judgeUndecidedAsFault();
            return passOn(outcome, "server_error", "upstream_error", "The model-service reported an error");
        }
        String why;
        if (lastFault != null) {
            why = "every model-service upstream failed (last: " + lastFault + ")";
        } else if (busyRetryAfter > 0) {
            why = "every model-service upstream is busy";
        } else if (anyBreakerOpen()) {
            why = "the model-service upstream is refusing calls after recent failures (circuit breaker open)";
        } else {
            why = "no model-service upstream is healthy";
        }
        // a busy upstream's own wait beats the gateway's guess
        long retryAfter = busyRetryAfter > 0 ? busyRetryAfter : pool.retryAfterSeconds();
        return new ChatStreamError(503, "server_error", "upstream_unavailable",
                "No upstream can serve this request now: " + why + ". Retry after " + retryAfter + " s.", null,
                retryAfter, false);
    }

    /** 504 for a read timeout; {@code relayedAny} when part of a stream already went out. */
    ChatStreamError timeout(boolean relayedAny) {
        return new ChatStreamError(504, "server_error", "upstream_timeout", "The model-service sent nothing within "
                + limit(readTimeout) + " (gateway.timeouts.read); the request was not retried elsewhere.", null, 0,
                relayedAny);
    }

    private boolean anyBreakerOpen() {
        return pool.upstreams().stream().anyMatch(u -> u.healthy() && !tried.contains(u)
                && (u.breaker().getState() == CircuitBreaker.State.OPEN
                        || u.breaker().getState() == CircuitBreaker.State.HALF_OPEN));
    }

    private void judgeUndecidedAsFault() {
        if (undecided != null) {
            undecided.failed(undecidedOutcome.failure());
            undecided = null;
        }
    }

    private static ChatStreamError passOn(AttemptOutcome outcome, String type, String code, String message) {
        JsonNode error = outcome.error();
        return new ChatStreamError(outcome.status(), error != null ? error.path("type").asText(type) : type,
                error != null ? error.path("code").asText(code) : code,
                error != null ? error.path("message").asText(message) : message,
                outcome.body() != null ? outcome.body() : "", 0, false);
    }

    /** "300 s", or "1500 ms" for limits that are not whole seconds. */
    static String limit(Duration duration) {
        return duration.toMillis() % 1000 == 0 ? duration.toSeconds() + " s" : duration.toMillis() + " ms";
    }

    /** A non-stream caller's answer for a stop without an upstream body to pass on. */
    static OpenAiException asException(ChatStreamError error) {
        return new OpenAiException(error.status(), error.type(), error.code(), null, error.message(),
                error.retryAfterSeconds() > 0 ? Map.of("Retry-After", Long.toString(error.retryAfterSeconds()))
                        : Map.of());
    }
}
