package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.time.Instant;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Service;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.KeyRateLimiter;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecord;
import dev.llmrelay.gateway.usage.UsageRecorder;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * Non-streamed requests: the same limits, upstream choice and failover as streams, with the upstream's
 * answer proxied as it came.
 */
@Service
class ChatProxyService {

    private static final Logger log = LoggerFactory.getLogger(ChatProxyService.class);
    private static final MediaType JSON = MediaType.get("application/json");

    private final UpstreamPool pool;
    private final KeyRateLimiter limiter;
    private final UsageRecorder usage;
    private final ObjectMapper mapper;
    private final GatewayProperties properties;
    private final OkHttpClient client;

    ChatProxyService(UpstreamPool pool, KeyRateLimiter limiter, UsageRecorder usage, ObjectMapper mapper,
            GatewayProperties properties, OkHttpClient upstreamHttpClient) {
        this.pool = pool;
        this.limiter = limiter;
        this.usage = usage;
        this.mapper = mapper;
        this.properties = properties;
        this.client = upstreamHttpClient;
    }

    /** An upstream answer to send on unchanged. */
    record Proxied(int status, String contentType, byte[] body, Map<String, String> headers) {
    }

    Proxied complete(ApiKey key, ObjectNode request, String requestId) {
        ChatRequests.validate(request);
        String model = ChatRequests.model(request);
        int promptEstimate = ChatRequests.estimatePromptTokens(request);
        Integer maxTokens = ChatRequests.maxTokens(request);
        RateLimitPermit permit;
        try {
            permit = limiter.admit(key, promptEstimate
                    + (maxTokens != null ? maxTokens : properties.defaultMaxTokensEstimate()));
        } catch (RateLimitExceededException e) {
            usage.recordRefused(requestId, key.id(), ChatStreamService.ENDPOINT, model, false, EndReason.rate_limited,
                    429);
            throw e;
        }
        long start = System.nanoTime();
        Set<Upstream> tried = new HashSet<>();
        String lastFailure = null;
        long upstreamRetryAfter = 0;
        try {
            byte[] body = mapper.writeValueAsBytes(request);
            while (true) {
                Optional<UpstreamLease> next = pool.acquire(tried);
                if (next.isEmpty()) {
                    permit.settle(0);
                    record(requestId, key, null, model, 0, 0, EndReason.upstream_error, 503, start);
                    throw new OpenAiException(503, "server_error", "upstream_unavailable", null,
                            "No upstream can serve this request now" + (lastFailure != null ? " (last: "
                                    + lastFailure + ")" : "") + ". Retry later.",
                            Map.of("Retry-After", Long.toString(upstreamRetryAfter > 0 ? upstreamRetryAfter
                                    : pool.retryAfterSeconds())));
                }
                UpstreamLease lease = next.get();
                tried.add(lease.upstream());
                Request.Builder call = new Request.Builder().url(lease.upstream().url("/v1/chat/completions"))
                        .header("X-Request-Id", requestId).post(RequestBody.create(body, JSON));
                String upstreamKey = properties.upstreamApiKey();
                if (upstreamKey != null && !upstreamKey.isBlank()) {
                    call.header("Authorization", "Bearer " + upstreamKey.strip());
                }
                try (Response response = client.newCall(call.build()).execute()) {
                    byte[] answer = response.body().bytes();
                    if (response.code() >= 500) {
                        lease.failed(new UpstreamLease.UpstreamFailure("HTTP " + response.code()));
                        lastFailure = "HTTP " + response.code() + " from " + lease.upstream().name();
                        upstreamRetryAfter = RetryAfter.seconds(response.header("Retry-After"));
                        continue;
                    }
                    lease.succeeded();
                    String contentType = response.header("Content-Type", "application/json");
                    if (!response.isSuccessful()) {
                        permit.settle(0);
                        record(requestId, key, lease.upstream(), model, 0, 0, EndReason.upstream_error,
                                response.code(), start);
                        return new Proxied(response.code(), contentType, answer, permit.headers());
                    }
                    JsonNode parsed = mapper.readTree(answer);
                    JsonNode usageNode = parsed.path("usage");
                    int prompt = usageNode.path("prompt_tokens").asInt(promptEstimate);
                    int completion = usageNode.path("completion_tokens").asInt(0);
                    permit.settle(prompt + completion);
                    String finish = parsed.path("choices").path(0).path("finish_reason").asText(null);
                    String answeredModel = parsed.path("model").asText(model);
                    record(requestId, key, lease.upstream(), answeredModel, prompt, completion,
                            EndReason.ofFinishReason(finish), response.code(), start);
                    return new Proxied(response.code(), contentType, answer, permit.headers());
                } catch (IOException e) {
                    lease.failed(e);
                    lastFailure = e.getClass().getSimpleName() + " at " + lease.upstream().name();
                    log.info("request {}: retrying on another upstream after {}", requestId, lastFailure);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } finally {
            permit.release();
        }
    }

    private void record(String requestId, ApiKey key, Upstream upstream, String model, int prompt, int completion,
            EndReason reason, int status, long start) {
        usage.record(new UsageRecord(requestId, key.id(), ChatStreamService.ENDPOINT,
                upstream == null ? null : upstream.name(), model, false, prompt, completion, "reported", reason, status,
                null, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), Instant.now()));
    }
}
