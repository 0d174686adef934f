package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.TimeUnit;

import org.springframework.stereotype.Service;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.upstream.AttemptOutcome;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecord;
import dev.llmrelay.gateway.usage.UsageRecorder;
import okhttp3.Call;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * Non-streamed requests: the same admission ({@link ChatAdmission}) and failover ({@link Failover}) as
 * streams, with the upstream's answer proxied as it came.
 */
@Service
class ChatProxyService {

    private static final MediaType JSON = MediaType.get("application/json");

    private final UpstreamPool pool;
    private final ChatAdmission admission;
    private final UsageRecorder usage;
    private final ObjectMapper mapper;
    private final GatewayProperties properties;
    private final OkHttpClient client;

    ChatProxyService(UpstreamPool pool, ChatAdmission admission, UsageRecorder usage, ObjectMapper mapper,
            GatewayProperties properties, OkHttpClient upstreamHttpClient) {
        this.pool = pool;
        this.admission = admission;
        this.usage = usage;
        this.mapper = mapper;
        this.properties = properties;
        this.client = upstreamHttpClient;
    }

    /** An upstream answer to send on unchanged. */
    record Proxied(int status, String contentType, byte[] body, Map<String, String> headers) {
    }

    /** The upstream call in progress for one request, so whoever holds it can stop it. */
    static final class UpstreamCall {
        private volatile Call current;
        private volatile boolean cancelled;

        void attach(Call call) {
            current = call;
            if (cancelled) {
                call.cancel();
            }
        }

        /** Cancels the upstream call now and any later attempt. */
        void cancel() {
            cancelled = true;
            Call call = current;
            if (call != null) {
                call.cancel();
            }
        }

        boolean cancelled() {
            return cancelled;
        }
    }

    Proxied complete(ApiKey key, ObjectNode request, String requestId) {
        return complete(key, request, requestId, new UpstreamCall());
    }

    Proxied complete(ApiKey key, ObjectNode request, String requestId, UpstreamCall handle) {
        ChatAdmission.Admitted admitted = admission.admit(key, request, requestId, false);
        RateLimitPermit permit = admitted.permit();
        String model = admitted.model();
        long start = System.nanoTime();
        Failover failover = new Failover(pool, properties.timeouts().read(), requestId);
        try {
            byte[] body = mapper.writeValueAsBytes(request);
            while (true) {
                Optional<UpstreamLease> next = failover.next();
                if (next.isEmpty()) {
                    return stop(failover.unavailable(), null, requestId, key, model, permit, start);
                }
                UpstreamLease lease = next.get();
                Call call = client.newCall(new Request.Builder().url(lease.upstream().url("/v1/chat/completions"))
                        .header("X-Request-Id", requestId).post(RequestBody.create(body, JSON)).build());
                handle.attach(call);
                AttemptOutcome outcome;
                try (Response response = call.execute()) {
                    byte[] answer = response.body().bytes();
                    outcome = AttemptOutcome.ofResponse(lease.upstream(), response.code(),
                            response.header("Retry-After"),
                            response.isSuccessful() ? null : new String(answer, StandardCharsets.UTF_8));
                    if (outcome.kind() == AttemptOutcome.Kind.OK) {
                        lease.succeeded();
                        failover.served();
                        return served(response, answer, requestId, key, lease.upstream(), model,
                                admitted.promptEstimate(), permit, start);
                    }
                } catch (IOException e) {
                    if (handle.cancelled()) {
                        // whoever cancelled (the client left) answers for the request; the upstream is not at fault
                        lease.released();
                        failover.abandoned();
                        permit.settle(0);
                        record(requestId, key, lease.upstream(), model, 0, 0, EndReason.client_cancelled, 499,
                                start);
                        throw new CancellationException("request " + requestId + " cancelled");
                    }
                    outcome = AttemptOutcome.ofFailure(lease.upstream(), e);
                }
                Optional<ChatStreamError> stop = failover.settle(lease, outcome);
                if (stop.isPresent()) {
                    return stop(stop.get(), lease.upstream(), requestId, key, model, permit, start);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } finally {
            permit.release();
        }
    }

    private Proxied served(Response response, byte[] answer, String requestId, ApiKey key, Upstream upstream,
            String model, int promptEstimate, RateLimitPermit permit, long start) throws IOException {
        JsonNode parsed = mapper.readTree(answer);
        JsonNode usageNode = parsed.path("usage");
        int prompt = usageNode.path("prompt_tokens").asInt(promptEstimate);
        int completion = usageNode.path("completion_tokens").asInt(0);
        permit.settle(prompt + completion);
        String finish = parsed.path("choices").path(0).path("finish_reason").asText(null);
        record(requestId, key, upstream, parsed.path("model").asText(model), prompt, completion,
                EndReason.ofFinishReason(finish), response.code(), start);
        return new Proxied(response.code(), response.header("Content-Type", "application/json"), answer,
                permit.headers());
    }

    /** The answer when failover stopped: the upstream's own error passed on, or the gateway's. */
    private Proxied stop(ChatStreamError error, Upstream upstream, String requestId, ApiKey key, String model,
            RateLimitPermit permit, long start) {
        permit.settle(0);
        record(requestId, key, error.upstreamBody() != null ? upstream : null, model, 0, 0, EndReason.upstream_error,
                error.status(), start);
        if (error.upstreamBody() == null) {
            throw Failover.asException(error);
        }
        Map<String, String> headers = new LinkedHashMap<>(permit.headers());
        return new Proxied(error.status(), "application/json",
                error.upstreamBody().getBytes(StandardCharsets.UTF_8), headers);
    }

    private void record(String requestId, ApiKey key, Upstream upstream, String model, int prompt, int completion,
            EndReason reason, int status, long start) {
        usage.record(new UsageRecord(requestId, key.id(), ChatStreamService.ENDPOINT,
                upstream == null ? null : upstream.name(), model, false, prompt, completion, "reported", reason, status,
                null, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), Instant.now()));
    }
}
