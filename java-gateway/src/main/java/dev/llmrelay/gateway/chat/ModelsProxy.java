package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.springframework.stereotype.Component;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.AttemptOutcome;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * {@code GET /v1/models} from the first upstream that answers (replicas of a pool serve the same model),
 * with the same failover rules as chat ({@link Failover}). With several pools (upstreams grouped by
 * model), one replica of each is asked and the lists are joined; a pool that cannot answer is left out
 * unless none can.
 */
@Component
class ModelsProxy {

    private final UpstreamPool pool;
    private final OkHttpClient client;
    private final GatewayProperties properties;
    private final ObjectMapper mapper;

    ModelsProxy(UpstreamPool pool, OkHttpClient upstreamHttpClient, GatewayProperties properties,
            ObjectMapper mapper) {
        this.mapper = mapper;
        this.pool = pool;
        this.client = upstreamHttpClient;
        this.properties = properties;
    }

    /** An upstream answer to send on unchanged. */
    record Answer(int status, String contentType, byte[] body, Map<String, String> headers) {
    }

    Answer list(String requestId) {
        List<String> pools = pool.pools();
        if (pools.size() == 1) {
            return listPool(requestId, pools.get(0));
        }
        Map<String, JsonNode> models = new LinkedHashMap<>();
        List<RuntimeException> refusals = new ArrayList<>();
        Answer firstError = null;
        for (String model : pools) {
            Answer answer;
            try {
                answer = listPool(requestId, model);
            } catch (OpenAiException refused) {
                refusals.add(refused);
                continue;
            }
            JsonNode data = answer.status() == 200 ? readData(answer.body()) : null;
            if (data == null) {
                firstError = firstError != null ? firstError : answer;
                continue;
            }
            data.forEach(m -> models.putIfAbsent(m.path("id").asText(), m));
        }
        if (models.isEmpty() && firstError != null) {
            return firstError;
        }
        if (models.isEmpty() && !refusals.isEmpty()) {
            throw refusals.get(0);
        }
        ObjectNode list = mapper.createObjectNode().put("object", "list");
        list.putArray("data").addAll(models.values());
        try {
            return new Answer(200, "application/json", mapper.writeValueAsBytes(list), Map.of());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private JsonNode readData(byte[] body) {
        try {
            JsonNode data = mapper.readTree(body).path("data");
            return data.isArray() ? data : null;
        } catch (IOException e) {
            return null;
        }
    }

    /** The list from one replica of {@code model}'s pool (null: the upstreams named without a model). */
    private Answer listPool(String requestId, String model) {
        Failover failover = new Failover(pool, properties.timeouts().read(), requestId, null, model);
        while (true) {
            Optional<UpstreamLease> next = failover.next();
            if (next.isEmpty()) {
                return answer(failover.unavailable());
            }
            UpstreamLease lease = next.get();
            Request request = new Request.Builder().url(lease.upstream().url("/v1/models"))
                    .header("X-Request-Id", requestId).get().build();
            AttemptOutcome outcome;
            try (Response response = client.newCall(request).execute()) {
                lease.opened();
                byte[] body = response.body().bytes();
                outcome = AttemptOutcome.ofResponse(lease.upstream(), response.code(), response.header("Retry-After"),
                        response.isSuccessful() ? null : new String(body, StandardCharsets.UTF_8));
                if (outcome.kind() == AttemptOutcome.Kind.OK) {
                    lease.succeeded();
                    failover.served();
                    return new Answer(response.code(),
                            response.header("Content-Type", "application/json"), body, Map.of());
                }
            } catch (IOException e) {
                outcome = AttemptOutcome.ofFailure(lease.upstream(), e);
            }
            Optional<ChatStreamError> stop = failover.settle(lease, outcome);
            if (stop.isPresent()) {
                return answer(stop.get());
            }
        }
    }

    private static Answer answer(ChatStreamError error) {
        if (error.upstreamBody() == null) {
            throw Failover.asException(error);
        }
        return new Answer(error.status(), "application/json",
                error.upstreamBody().getBytes(StandardCharsets.UTF_8), Map.of());
    }
}
