package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/** {@code GET /v1/models} from the first upstream that answers (replicas serve the same model). */
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
        Set<Upstream> tried = new HashSet<>();
        while (true) {
            Optional<UpstreamLease> next = pool.acquire(tried);
            if (next.isEmpty()) {
                throw new OpenAiException(503, "server_error", "upstream_unavailable", null,
                        "No upstream can serve this request now. Retry later.",
                        Map.of("Retry-After", Long.toString(pool.retryAfterSeconds())));
            }
            UpstreamLease lease = next.get();
            tried.add(lease.upstream());
            Request.Builder request = new Request.Builder().url(lease.upstream().url("/v1/models"))
                    .header("X-Request-Id", requestId).get();
            String upstreamKey = properties.upstreamApiKey();
            if (upstreamKey != null && !upstreamKey.isBlank()) {
                request.header("Authorization", "Bearer " + upstreamKey.strip());
            }
            try (Response response = client.newCall(request.build()).execute()) {
                byte[] body = response.body().bytes();
                if (response.code() >= 500) {
                    lease.failed(new UpstreamLease.UpstreamFailure("HTTP " + response.code()));
                    continue;
                }
                lease.succeeded();
                return new Answer(response.code(),
                        response.header("Content-Type", "application/json"), body, Map.of());
            } catch (IOException e) {
                lease.failed(e);
            }
        }
    }
}
