package dev.llmrelay.gateway.upstream;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Component;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Each upstream's models and their context length ({@code data[].max_model_len} of its
 * {@code /v1/models}), refreshed by the health probe. Lets the gateway refuse a request no replica could
 * ever serve (400, not a 429 the client would retry forever) and reserve only what a model can produce.
 */
@Component
public class UpstreamModels {

    private static final Logger log = LoggerFactory.getLogger(UpstreamModels.class);

    private final ObjectMapper mapper;
    /** upstream name -> (model id -> max_model_len) as last listed */
    private final Map<String, Map<String, Integer>> byUpstream = new ConcurrentHashMap<>();
    /** upstream name -> every model id it listed, with a context length or without */
    private final Map<String, Set<String>> idsByUpstream = new ConcurrentHashMap<>();

    UpstreamModels(ObjectMapper mapper) {
        this.mapper = mapper;
    }

    /**
     * The context length of {@code model} (the smallest any replica reports, so a request that fits fits
     * everywhere), or empty when no replica listed it yet.
     */
    public OptionalInt contextLength(String model) {
        if (model == null) {
            return OptionalInt.empty();
        }
        return byUpstream.values().stream().map(models -> models.get(model)).filter(len -> len != null)
                .mapToInt(Integer::intValue).min();
    }

    /** Whether some replica listed {@code model} in its {@code /v1/models}. */
    public boolean listed(String model) {
        return contextLength(model).isPresent();
    }

    /** The model ids {@code upstream} listed in its last {@code /v1/models} (empty before the first). */
    public Set<String> listedBy(Upstream upstream) {
        return idsByUpstream.getOrDefault(upstream.name(), Set.of());
    }

    /** Takes a {@code /v1/models} body of {@code upstream}; a body that is not a model list is ignored. */
    void learn(Upstream upstream, String body) {
        JsonNode data;
        try {
            data = mapper.readTree(body).path("data");
        } catch (IOException e) {
            return;
        }
        if (!data.isArray()) {
            return;
        }
        Map<String, Integer> models = new HashMap<>();
        Set<String> ids = new java.util.HashSet<>();
        for (JsonNode model : data) {
            if (model.path("id").isTextual()) {
                ids.add(model.path("id").asText());
            }
            JsonNode len = model.path("max_model_len");
            if (model.path("id").isTextual() && len.canConvertToInt() && len.asInt() > 0) {
                models.put(model.path("id").asText(), len.asInt());
            }
        }
        idsByUpstream.put(upstream.name(), Set.copyOf(ids));
        Map<String, Integer> before = byUpstream.put(upstream.name(), Map.copyOf(models));
        if (!models.equals(before)) {
            log.info("upstream {} serves {}", upstream.name(), models);
        }
    }

    /** Forgets everything learnt (tests that taught it a context length). */
    void forgetAll() {
        byUpstream.clear();
        idsByUpstream.clear();
    }
}
