package dev.llmrelay.gateway.upstream;

import java.util.Map;
import java.util.Set;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.OpenAiException;

/**
 * Where a generation request goes, resolved before any policy looks at it: the model it names (or none),
 * the pool that serves it, and the model that pool serves. Every policy (pause, system prompt, context
 * length, usage rows) keys on the served model, so a request that leaves {@code model} out is treated as
 * one naming the model its pool serves; before, it escaped that model's prompt and pause.
 *
 * <p>A named model is served as named. A request naming none goes to the default pool (the upstreams named
 * without a model), whose model is the one id its replicas list in {@code /v1/models}; it stays unknown
 * (null: only the pool's own policies apply) until a replica listed one, while replicas list different or
 * several models, or when that id is the name of another pool (routing by it would change the pool).
 */
@Component
public class RouteResolver {

    private final UpstreamPool pool;
    private final UpstreamModels models;

    RouteResolver(UpstreamPool pool, UpstreamModels models) {
        this.pool = pool;
        this.models = models;
    }

    /** {@code requested}: the request's model, null when it names none; {@code model}: the served one, or null. */
    public record Target(String requested, String pool, String model) {
    }

    /** @throws OpenAiException 404 {@code model_not_found} (param {@code model}) for a model no pool serves */
    public Target resolve(String requested) {
        if (!pool.serves(requested)) {
            throw new OpenAiException(404, "invalid_request_error", "model_not_found", "model",
                    "The model '" + requested + "' does not exist: no upstream pool serves it (see GET /v1/models).",
                    Map.of());
        }
        String poolName = pool.poolName(requested);
        return new Target(requested, poolName, requested != null ? requested : servedByDefaultPool());
    }

    private String servedByDefaultPool() {
        if (!pool.isPool(UpstreamPool.DEFAULT_POOL)) {
            return null;
        }
        Set<Upstream> outside = pool.outsidePool(null);
        String served = null;
        for (Upstream upstream : pool.upstreams()) {
            Set<String> listed = models.listedBy(upstream);
            if (outside.contains(upstream) || listed.isEmpty()) {
                continue; // another pool's replica, or one not listed yet
            }
            if (listed.size() != 1 || (served != null && !served.equals(listed.iterator().next()))) {
                return null;
            }
            served = listed.iterator().next();
        }
        return served != null && UpstreamPool.DEFAULT_POOL.equals(pool.poolName(served)) ? served : null;
    }
}
