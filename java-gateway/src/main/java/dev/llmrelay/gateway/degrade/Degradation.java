package dev.llmrelay.gateway.degrade;

import java.util.Map;
import java.util.Optional;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * What the chat path asks of degradation: the {@code max_tokens} cap (before the key's admission, so
 * the reservation is the capped one), then the pause switch and a slot of the pool's
 * {@link AdaptiveLimiter} or of its fallback route's pool ({@link #route}).
 */
@Component("chatDegradation") // "degradation" is the health component's name
public class Degradation {

    public static final String FALLBACK_HEADER = "X-Relay-Fallback";

    private final PolicySource policy;
    private final AdaptiveLimiter limiter;
    private final UpstreamPool upstreams;
    private final MeterRegistry meters;
    private final long shedRetryAfter;
    private final Counter paused;
    private final Counter refusedConversations;

    Degradation(PolicySource policy, AdaptiveLimiter limiter, UpstreamPool upstreams, GatewayProperties properties,
            MeterRegistry meters) {
        this.policy = policy;
        this.limiter = limiter;
        this.upstreams = upstreams;
        this.meters = meters;
        this.shedRetryAfter = Math.max(1, properties.degrade().shedRetryAfter().toSeconds());
        this.paused = Counter.builder("gateway.degrade.refused").tag("reason", "model_paused")
                .description("requests refused by a degradation switch").register(meters);
        this.refusedConversations = Counter.builder("gateway.degrade.refused").tag("reason", "new_conversation")
                .description("requests refused by a degradation switch").register(meters);
        Gauge.builder("gateway.degrade.max_tokens_cap", policy,
                p -> p.current().maxTokensCap() == null ? 0 : p.current().maxTokensCap())
                .description("max_tokens cap for every request (0: none)").register(meters);
        Gauge.builder("gateway.degrade.paused_models", policy, p -> p.current().pausedModels().size())
                .description("models or pools paused").register(meters);
        Gauge.builder("gateway.degrade.refuse_new_conversations", policy,
                p -> p.current().newConversationsRefusal() == null ? 0 : 1)
                .description("1 while new browser conversations are refused").register(meters);
        Gauge.builder("gateway.degrade.fallback_routes", policy, p -> p.current().fallbacks().size())
                .description("fallback routes configured").register(meters);
    }

    /** Where an admitted request goes: the model that serves it ({@code RouteResolver}), or its fallback route's model. */
    public record Route(String model, String fallbackFrom, AdaptiveLimiter.Slot slot) {

        /** {@code X-Relay-Fallback: <primary>-><fallback>} when the fallback serves, else nothing. */
        public Map<String, String> headers() {
            return fallbackFrom == null ? Map.of() : Map.of(FALLBACK_HEADER, fallbackFrom + "->" + model);
        }
    }

    /**
     * Lowers the request's completion budget to the cap in force ({@code max_completion_tokens} and
     * {@code max_tokens} if given, else sets {@code max_tokens}). A value that is not a number is left for
     * validation to refuse.
     */
    public void capMaxTokens(ObjectNode request) {
        Integer cap = policy.current().maxTokensCap();
        if (cap == null) {
            return;
        }
        boolean given = false;
        for (String field : new String[] {"max_completion_tokens", "max_tokens"}) {
            JsonNode value = request.get(field);
            if (value != null && !value.isNull()) {
                given = true;
                if (value.isIntegralNumber() && value.asLong() > cap) {
                    request.put(field, cap);
                }
            }
        }
        if (!given) {
            request.put("max_tokens", cap);
        }
    }

    /**
     * Refuses a paused model, or a model of a paused pool, with the operator's message.
     *
     * @throws OpenAiException 503 {@code model_paused}
     */
    public void checkPaused(String model) {
        String pausedMessage = pauseOf(policy.current(), model, upstreams.poolName(model));
        if (pausedMessage != null) {
            paused.increment();
            throw new OpenAiException(503, "server_error", "model_paused", null, pausedMessage, Map.of());
        }
    }

    /**
     * After the key's admission (and {@link #checkPaused}): takes a slot in the model's pool; when that pool
     * is at its limit or has no usable replica, a key that allows it is served by the pool's fallback route;
     * otherwise 503 {@code overloaded} with Retry-After. A pool with no usable replica and no fallback still
     * gets its slot: the failover answers as before.
     *
     * @throws OpenAiException 503 (shed)
     */
    public Route route(ApiKey key, String model) {
        String pool = upstreams.poolName(model);
        boolean usable = upstreams.usable(model);
        if (usable) {
            Optional<AdaptiveLimiter.Slot> slot = limiter.tryAcquire(pool);
            if (slot.isPresent()) {
                return new Route(model, null, slot.get());
            }
        }
        Optional<Route> fallback = fallback(key, model);
        if (fallback.isPresent()) {
            return fallback.get();
        }
        if (!usable) {
            Optional<AdaptiveLimiter.Slot> slot = limiter.tryAcquire(pool);
            if (slot.isPresent()) {
                return new Route(model, null, slot.get());
            }
        }
        throw new OpenAiException(503, "server_error", "overloaded", null, "The gateway is at its concurrency limit "
                + "for the model's pool ('" + pool + "'): the request was shed before reaching a model. Retry after "
                + shedRetryAfter + " s.", Map.of("Retry-After", Long.toString(shedRetryAfter)));
    }

    /**
     * The fallback route of {@code model}'s pool with a slot of its pool, when one is configured, the key
     * allows it, and the fallback model is neither paused, unusable nor at its limit; else empty. Also
     * used when every replica of the pool failed or was busy before the first event.
     */
    public Optional<Route> fallback(ApiKey key, String model) {
        DegradePolicy current = policy.current();
        String pool = upstreams.poolName(model);
        String fallback = current.fallbacks().get(pool);
        if (fallback == null || !key.allowFallback() || pauseOf(current, fallback, upstreams.poolName(fallback)) != null
                || !upstreams.usable(fallback)) {
            return Optional.empty();
        }
        return limiter.tryAcquire(upstreams.poolName(fallback)).map(slot -> {
            meters.counter("gateway.degrade.fallbacks", "pool", pool, "fallback", fallback).increment();
            return new Route(fallback, model != null ? model : pool, slot);
        });
    }

    /**
     * Refuses a new browser conversation while the switch is on (existing conversations go on).
     *
     * @throws OpenAiException 503 {@code new_conversations_refused} with the operator's message
     */
    public void checkNewConversation() {
        String refusal = policy.current().newConversationsRefusal();
        if (refusal != null) {
            refusedConversations.increment();
            throw new OpenAiException(503, "server_error", "new_conversations_refused", null, refusal, Map.of());
        }
    }

    private static String pauseOf(DegradePolicy policy, String model, String pool) {
        String byModel = model == null ? null : policy.pausedModels().get(model);
        return byModel != null ? byModel : policy.pausedModels().get(pool);
    }
}
