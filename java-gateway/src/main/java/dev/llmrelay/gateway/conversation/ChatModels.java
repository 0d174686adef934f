package dev.llmrelay.gateway.conversation;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.ApiProblem;
import dev.llmrelay.gateway.upstream.RouteResolver;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.upstream.UpstreamModels;
import dev.llmrelay.gateway.upstream.UpstreamPool;

/**
 * The models a browser conversation may use (the page's picker): each model pool's model, and the models the
 * default pool's replicas list in their {@code /v1/models} (learnt by the health probe), in the order the
 * upstreams are configured. Unlike {@code /v1}, where a model no pool names still goes to the default pool,
 * the browser API accepts only a model it offers, so a stale picker cannot store a conversation no replica
 * answers.
 */
@Component
class ChatModels {

    private final UpstreamPool pool;
    private final UpstreamModels models;
    private final RouteResolver routes;

    ChatModels(UpstreamPool pool, UpstreamModels models, RouteResolver routes) {
        this.pool = pool;
        this.models = models;
        this.routes = routes;
    }

    List<String> offered() {
        Set<String> ids = new LinkedHashSet<>();
        for (Upstream upstream : pool.upstreams()) {
            if (upstream.model() != null) {
                ids.add(upstream.model());
            } else {
                models.listedBy(upstream).stream().sorted().forEach(ids::add);
            }
        }
        return new ArrayList<>(ids);
    }

    /**
     * The model of a conversation that chose none: the default pool's model when it has one, else (every
     * upstream grouped by model) the first pool's, so its replies do not hop between models.
     */
    String defaultModel() {
        String served = routes.resolve(null).model();
        if (served != null || pool.isPool(UpstreamPool.DEFAULT_POOL)) {
            return served;
        }
        List<String> offered = offered();
        return offered.isEmpty() ? null : offered.get(0);
    }

    /**
     * The model to name in the upstream request of a conversation whose stored model is {@code chosen}: the
     * chosen one, else the default when requests without a model would not reach the default pool.
     */
    String requestModel(String chosen) {
        if (chosen != null) {
            return chosen;
        }
        return pool.isPool(UpstreamPool.DEFAULT_POOL) ? null : defaultModel();
    }

    /**
     * {@code model} when the browser API offers it; null stays null (the conversation's own, or the default).
     *
     * @throws ApiProblem 400 for a blank model, 404 {@code model_not_found} for one not offered
     */
    String check(String model) {
        if (model == null) {
            return null;
        }
        if (model.isBlank()) {
            throw ApiProblem.badRequest("model must name a model of GET /api/chat/models, or be left out.");
        }
        if (!offered().contains(model)) {
            throw ApiProblem.notFound("model_not_found", "The model '" + model
                    + "' is not offered here: pick one of GET /api/chat/models.");
        }
        return model;
    }
}
