package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.upstream.AttemptOutcome;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * {@code GET /v1/models} from the first upstream that answers (replicas serve the same model), with the
 * same failover rules as chat ({@link Failover}).
 */
@Component
class ModelsProxy {

    private final UpstreamPool pool;
    private final OkHttpClient client;
    private final GatewayProperties properties;

    ModelsProxy(UpstreamPool pool, OkHttpClient upstreamHttpClient, GatewayProperties properties) {
        this.pool = pool;
        this.client = upstreamHttpClient;
        this.properties = properties;
    }

    /** An upstream answer to send on unchanged. */
    record Answer(int status, String contentType, byte[] body, Map<String, String> headers) {
    }

    Answer list(String requestId) {
        Failover failover = new Failover(pool, properties.timeouts().read(), requestId);
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
