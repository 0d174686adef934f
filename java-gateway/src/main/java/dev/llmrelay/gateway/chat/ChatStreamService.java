package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.time.Instant;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Service;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.KeyRateLimiter;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import dev.llmrelay.gateway.usage.EndReason;
import dev.llmrelay.gateway.usage.UsageRecord;
import dev.llmrelay.gateway.usage.UsageRecorder;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.sse.EventSource;
import okhttp3.sse.EventSourceListener;
import okhttp3.sse.EventSources;

/**
 * One streamed chat completion through the gateway, for any front end (the /v1 relay, the browser API):
 * per-key limits, upstream choice (healthy, breaker closed, fewest in flight), failover before the first
 * chunk, usage accounting and cancellation are all applied here.
 *
 * <pre>{@code
 * ChatStreamHandle handle = chatStreams.start(key, request, requestId, new ChatStreamListener() {
 *     public void onDelta(String text) { ... }
 *     public void onFinish(String finishReason, ChatUsage usage) { ... }
 *     public void onError(ChatStreamError error) { ... }
 * });
 * // later, when the reader goes away:
 * handle.cancel();
 * }</pre>
 *
 * {@code start} returns at once; callbacks follow on an OkHttp thread. It throws
 * {@link RateLimitExceededException} (429, with headers) when a limit of the key is spent and
 * {@link dev.llmrelay.gateway.system.OpenAiException} (400) for a request without messages. The upstream
 * is always asked for {@code stream_options.include_usage}; the usage chunk reaches the listener only if
 * the request asked for it. Every stream writes one usage row.
 */
@Service
public class ChatStreamService {

    private static final Logger log = LoggerFactory.getLogger(ChatStreamService.class);
    private static final MediaType JSON = MediaType.get("application/json");
    static final String ENDPOINT = "chat.completions";

    private final UpstreamPool pool;
    private final KeyRateLimiter limiter;
    private final UsageRecorder usage;
    private final ObjectMapper mapper;
    private final GatewayProperties properties;
    private final EventSource.Factory eventSources;
    private final AtomicInteger activeStreams = new AtomicInteger();

    ChatStreamService(UpstreamPool pool, KeyRateLimiter limiter, UsageRecorder usage, ObjectMapper mapper,
            GatewayProperties properties, OkHttpClient upstreamHttpClient, MeterRegistry meters) {
        this.pool = pool;
        this.limiter = limiter;
        this.usage = usage;
        this.mapper = mapper;
        this.properties = properties;
        this.eventSources = EventSources.createFactory(upstreamHttpClient);
        Gauge.builder("gateway.streams.active", activeStreams, AtomicInteger::get)
                .description("streams relayed right now").register(meters);
    }

    /**
     * Starts streaming {@code openAiRequest} (an OpenAI chat request; {@code stream} is forced on) for
     * {@code key}. {@code requestId} travels to the model-service as X-Request-Id and into the usage row.
     */
    public ChatStreamHandle start(ApiKey key, ObjectNode openAiRequest, String requestId,
            ChatStreamListener listener) {
        ChatRequests.validate(openAiRequest);
        String model = ChatRequests.model(openAiRequest);
        int promptEstimate = ChatRequests.estimatePromptTokens(openAiRequest);
        Integer maxTokens = ChatRequests.maxTokens(openAiRequest);
        long reservation = promptEstimate + (maxTokens != null ? maxTokens : properties.defaultMaxTokensEstimate());
        RateLimitPermit permit;
        try {
            permit = limiter.admit(key, reservation);
        } catch (RateLimitExceededException e) {
            usage.recordRefused(requestId, key.id(), ENDPOINT, model, ChatRequests.wantsStream(openAiRequest),
                    EndReason.rate_limited, 429);
            throw e;
        }
        boolean clientStreams = ChatRequests.wantsStream(openAiRequest);
        boolean clientWantsUsage = openAiRequest.path("stream_options").path("include_usage").asBoolean(false);
        ObjectNode upstreamRequest = openAiRequest.deepCopy();
        upstreamRequest.put("stream", true);
        // always ask for usage (billing); a client's "stream_options": null or junk is replaced
        ObjectNode options = upstreamRequest.get("stream_options") instanceof ObjectNode existing ? existing
                : upstreamRequest.putObject("stream_options");
        options.put("include_usage", true);
        byte[] body;
        try {
            body = mapper.writeValueAsBytes(upstreamRequest);
        } catch (JsonProcessingException e) {
            permit.release();
            throw new IllegalStateException(e);
        }
        StreamCall call = new StreamCall(key, requestId, model, promptEstimate, clientStreams, clientWantsUsage, body,
                permit, listener);
        activeStreams.incrementAndGet();
        call.connect(null);
        return call;
    }

    /** The state of one stream across its attempts (one per upstream tried). */
    private final class StreamCall implements ChatStreamHandle {
        private final ApiKey key;
        private final String requestId;
        private final int promptEstimate;
        /** For the usage row: whether the client asked for a stream (the upstream is always asked for one). */
        private final boolean clientStreams;
        private final boolean clientWantsUsage;
        private final byte[] body;
        private final RateLimitPermit permit;
        private final ChatStreamListener listener;
        private final long startNanos = System.nanoTime();
        private final Set<Upstream> tried = new HashSet<>();
        private final AtomicBoolean done = new AtomicBoolean();
        private final AtomicBoolean opened = new AtomicBoolean();

        private volatile String model;
        private volatile UpstreamLease lease;
        private volatile EventSource source;
        private volatile boolean relayedAny;
        private volatile long firstTokenNanos;
        private volatile int contentChunks;
        private volatile String finishReason;
        private volatile ChatUsage reportedUsage;
        /** Retry-After of the last upstream that refused (503 with queue full), passed on when all refuse. */
        private volatile long upstreamRetryAfter;

        StreamCall(ApiKey key, String requestId, String model, int promptEstimate, boolean clientStreams,
                boolean clientWantsUsage, byte[] body, RateLimitPermit permit, ChatStreamListener listener) {
            this.key = key;
            this.requestId = requestId;
            this.model = model;
            this.promptEstimate = promptEstimate;
            this.clientStreams = clientStreams;
            this.clientWantsUsage = clientWantsUsage;
            this.body = body;
            this.permit = permit;
            this.listener = listener;
        }

        /** Tries the next upstream; {@code lastFailure} says why the previous one was left. */
        synchronized void connect(String lastFailure) {
            if (done.get()) {
                return;
            }
            Optional<UpstreamLease> next = pool.acquire(tried);
            if (next.isEmpty()) {
                String why = lastFailure == null ? "no model-service upstream is healthy"
                        : "every model-service upstream failed (last: " + lastFailure + ")";
                fail(new ChatStreamError(503, "server_error", "upstream_unavailable",
                        "No upstream can serve this request now: " + why + ". Retry later.", null,
                        upstreamRetryAfter > 0 ? upstreamRetryAfter : pool.retryAfterSeconds(), false));
                return;
            }
            UpstreamLease current = next.get();
            lease = current;
            tried.add(current.upstream());
            Request.Builder request = new Request.Builder()
                    .url(current.upstream().url("/v1/chat/completions"))
                    .header("Accept", "text/event-stream")
                    .header("X-Request-Id", requestId)
                    .post(RequestBody.create(body, JSON));
            String upstreamKey = properties.upstreamApiKey();
            if (upstreamKey != null && !upstreamKey.isBlank()) {
                request.header("Authorization", "Bearer " + upstreamKey.strip());
            }
            source = eventSources.newEventSource(request.build(), new Attempt(current));
        }

        /** Called by cancel() after it claimed the end: stops whatever attempt runs now. */
        private synchronized void stopCurrentAttempt() {
            EventSource current = source;
            if (current != null) {
                current.cancel();
            }
            UpstreamLease currentLease = lease;
            if (currentLease != null) {
                currentLease.abandoned();
            }
        }

        @Override
        public void cancel() {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            stopCurrentAttempt();
            log.debug("stream {} cancelled by its client", requestId);
            account(EndReason.client_cancelled, 499);
        }

        @Override
        public Map<String, String> rateLimitHeaders() {
            return permit.headers();
        }

        @Override
        public boolean isDone() {
            return done.get();
        }

        private void finish() {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            lease.succeeded();
            ChatUsage usage = account(EndReason.ofFinishReason(finishReason), 200);
            safely(() -> listener.onFinish(finishReason, usage));
        }

        private void fail(ChatStreamError error) {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            EventSource current = source;
            if (current != null) {
                current.cancel();
            }
            account(EndReason.upstream_error, error.status());
            safely(() -> listener.onError(error));
        }

        /** Settles the limits, writes the usage row; a cut stream is billed for what was relayed. */
        private ChatUsage account(EndReason reason, int status) {
            activeStreams.decrementAndGet();
            ChatUsage reported = reportedUsage;
            ChatUsage billed = reported != null ? reported
                    : new ChatUsage(relayedAny ? promptEstimate : 0, contentChunks, false);
            permit.settle(billed.totalTokens());
            permit.release();
            long now = System.nanoTime();
            Long ttft = firstTokenNanos == 0 ? null : TimeUnit.NANOSECONDS.toMillis(firstTokenNanos - startNanos);
            UpstreamLease current = lease;
            usage.record(new UsageRecord(requestId, key.id(), ENDPOINT,
                    current == null ? null : current.upstream().name(), model, clientStreams, billed.promptTokens(),
                    billed.completionTokens(), billed.reported() ? "reported" : "counted", reason, status, ttft,
                    TimeUnit.NANOSECONDS.toMillis(now - startNanos), Instant.now()));
            return billed;
        }

        private void safely(Runnable callback) {
            try {
                callback.run();
            } catch (RuntimeException e) {
                log.warn("stream {}: listener failed", requestId, e);
            }
        }

        /** Events of one upstream attempt; callbacks of an abandoned attempt are ignored. */
        private final class Attempt extends EventSourceListener {
            private final UpstreamLease attemptLease;

            Attempt(UpstreamLease attemptLease) {
                this.attemptLease = attemptLease;
            }

            private boolean stale() {
                return done.get() || lease != attemptLease;
            }

            @Override
            public void onOpen(EventSource eventSource, Response response) {
                if (stale()) {
                    return;
                }
                if (opened.compareAndSet(false, true)) {
                    safely(listener::onOpen);
                }
            }

            @Override
            public void onEvent(EventSource eventSource, String id, String type, String data) {
                if (stale()) {
                    return;
                }
                if ("[DONE]".equals(data.strip())) {
                    finish();
                    return;
                }
                JsonNode chunk;
                try {
                    chunk = mapper.readTree(data);
                } catch (IOException e) {
                    failAttempt(eventSource, new IOException("upstream sent an event that is not JSON"), null);
                    return;
                }
                JsonNode error = chunk.get("error");
                if (error != null && error.isObject()) {
                    if (!relayedAny) {
                        failAttempt(eventSource, new IOException("upstream error event: "
                                + error.path("message").asText("")), null);
                    } else {
                        attemptLease.failed(new UpstreamLease.UpstreamFailure("error event mid-stream"));
                        fail(new ChatStreamError(502, error.path("type").asText("server_error"),
                                error.path("code").asText("upstream_error"), error.path("message").asText(
                                        "The model-service reported an error"), data, 0, true));
                    }
                    return;
                }
                if (model == null && chunk.path("model").isTextual()) {
                    model = chunk.path("model").asText();
                }
                JsonNode usageNode = chunk.get("usage");
                JsonNode choices = chunk.path("choices");
                if (usageNode != null && usageNode.isObject()) {
                    reportedUsage = ChatUsage.fromOpenAi(usageNode);
                    if (!clientWantsUsage) {
                        if (choices.isEmpty()) {
                            return; // the usage-only chunk the client never asked for
                        }
                        ((ObjectNode) chunk).remove("usage");
                        data = chunk.toString();
                    }
                }
                relayedAny = true;
                JsonNode choice = choices.path(0);
                String text = choice.path("delta").path("content").asText("");
                if (!text.isEmpty()) {
                    if (contentChunks++ == 0) {
                        firstTokenNanos = System.nanoTime(); // TTFT: the first text, not a role-only chunk
                    }
                }
                if (choice.path("finish_reason").isTextual()) {
                    finishReason = choice.path("finish_reason").asText();
                }
                if (done.get()) {
                    return; // cancelled while this event was parsed: no new callback starts after cancel()
                }
                String relayed = data;
                safely(() -> listener.onChunk(relayed, chunk));
                if (!text.isEmpty() && !done.get()) {
                    safely(() -> listener.onDelta(text));
                }
            }

            @Override
            public void onClosed(EventSource eventSource) {
                if (stale()) {
                    return;
                }
                if (finishReason != null) {
                    finish(); // the upstream ended without [DONE] after a finish_reason: a complete answer
                } else {
                    failAttempt(eventSource, new IOException("upstream closed the stream before it finished"),
                            null);
                }
            }

            @Override
            public void onFailure(EventSource eventSource, Throwable t, Response response) {
                if (stale()) {
                    return;
                }
                failAttempt(eventSource, t, response);
            }

            private void failAttempt(EventSource eventSource, Throwable t, Response response) {
                int code = response != null ? response.code() : 0;
                // read the error body before cancelling: cancelling the call closes it
                String errorBody = code >= 400 && code < 500 ? readBody(response) : null;
                eventSource.cancel();
                if (code >= 400 && code < 500) {
                    // the client's fault, not the upstream's: pass it through unchanged
                    attemptLease.succeeded();
                    JsonNode parsed = parse(errorBody);
                    fail(new ChatStreamError(code, parsed.path("error").path("type").asText("invalid_request_error"),
                            parsed.path("error").path("code").asText("upstream_rejected"),
                            parsed.path("error").path("message").asText("The model-service refused the request"),
                            errorBody, 0, relayedAny));
                    return;
                }
                String cause = code >= 300 ? "HTTP " + code + " from " + attemptLease.upstream().name()
                        : (t != null ? t.getClass().getSimpleName() + ": " + t.getMessage() : "stream failed")
                                + " at " + attemptLease.upstream().name();
                attemptLease.failed(t != null ? t : new UpstreamLease.UpstreamFailure(cause));
                if (response != null) {
                    upstreamRetryAfter = RetryAfter.seconds(response.header("Retry-After"));
                    response.close();
                }
                if (!relayedAny) {
                    log.info("stream {}: retrying on another upstream after {}", requestId, cause);
                    connect(cause);
                } else {
                    log.warn("stream {}: upstream broke off mid-stream: {}", requestId, cause);
                    fail(new ChatStreamError(502, "server_error", "upstream_error",
                            "The model-service stream broke off: " + cause, null, 0, true));
                }
            }
        }

        private String readBody(Response response) {
            try (response) {
                return response.body().string();
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }

        private JsonNode parse(String text) {
            if (text == null) {
                return mapper.createObjectNode();
            }
            try {
                return mapper.readTree(text);
            } catch (IOException e) {
                return mapper.createObjectNode();
            }
        }
    }
}
