package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
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

import dev.llmrelay.gateway.degrade.AdaptiveLimiter;
import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.ratelimit.RateLimitPermit;
import dev.llmrelay.gateway.safety.ContentFilter;
import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.upstream.AttemptOutcome;
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
 * One streamed chat completion (or legacy text completion, {@link GenerationEndpoint}) through the gateway,
 * for any front end (the /v1 relay, the browser API):
 * admission ({@link ChatAdmission}), upstream choice and failover before the first chunk ({@link Failover}),
 * chunk relay, usage accounting and cancellation.
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
 * {@link dev.llmrelay.gateway.system.OpenAiException} (400) for a request without messages or over the
 * model's context length. The upstream
 * is always asked for {@code stream_options.include_usage}; the usage chunk reaches the listener only if
 * the request asked for it. Every stream writes one usage row.
 */
@Service
public class ChatStreamService {

    private static final Logger log = LoggerFactory.getLogger(ChatStreamService.class);
    private static final MediaType JSON = MediaType.get("application/json");

    private final UpstreamPool pool;
    private final ChatAdmission admission;
    private final UsageRecorder usage;
    private final ObjectMapper mapper;
    private final GatewayProperties properties;
    private final EventSource.Factory eventSources;
    private final ContentFilter contentFilter;
    private final RequestRewriter rewriter;
    private final AtomicInteger activeStreams = new AtomicInteger();
    private final Degradation degradation;

    ChatStreamService(UpstreamPool pool, ChatAdmission admission, UsageRecorder usage, ObjectMapper mapper,
            GatewayProperties properties, OkHttpClient upstreamHttpClient, MeterRegistry meters,
            ContentFilter contentFilter, RequestRewriter rewriter, Degradation degradation) {
        this.pool = pool;
        this.contentFilter = contentFilter;
        this.rewriter = rewriter;
        this.degradation = degradation;
        this.admission = admission;
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
        return start(GenerationEndpoint.CHAT, key, openAiRequest, requestId, listener);
    }

    /** As above, for any generation endpoint (a text completion's chunks carry {@code choices[].text}). */
    ChatStreamHandle start(GenerationEndpoint endpoint, ApiKey key, ObjectNode openAiRequest, String requestId,
            ChatStreamListener listener) {
        // OpenAI's `user` names the end user: their requests prefer one replica (its prompt cache)
        String user = openAiRequest.path("user").isTextual() ? openAiRequest.path("user").asText() : "";
        return start(endpoint, key, openAiRequest, requestId,
                user.isEmpty() ? null : "user:" + key.id() + ":" + user, listener);
    }

    /**
     * As above, with the replica preference given by the caller ({@code affinityKey}, e.g. a conversation;
     * null: none), see {@link UpstreamPool#acquire(java.util.Set, String)}.
     */
    public ChatStreamHandle start(ApiKey key, ObjectNode openAiRequest, String requestId, String affinityKey,
            ChatStreamListener listener) {
        return start(GenerationEndpoint.CHAT, key, openAiRequest, requestId, affinityKey, listener);
    }

    private ChatStreamHandle start(GenerationEndpoint endpoint, ApiKey key, ObjectNode openAiRequest,
            String requestId, String affinityKey, ChatStreamListener listener) {
        boolean clientStreams = ChatRequests.wantsStream(openAiRequest);
        degradation.capMaxTokens(openAiRequest);
        ChatAdmission.Admitted admitted = admission.admit(endpoint, key, openAiRequest, requestId, clientStreams);
        RateLimitPermit permit = admitted.permit();
        Degradation.Route route;
        try {
            route = degradation.route(key, admitted.model());
        } catch (OpenAiException refused) {
            permit.settle(0);
            permit.release();
            usage.recordRefused(requestId, key.id(), endpoint.usageName, admitted.model(), clientStreams,
                    EndReason.degraded, refused.status());
            throw refused;
        }
        boolean clientWantsUsage = openAiRequest.path("stream_options").path("include_usage").asBoolean(false);
        byte[] body;
        try {
            body = upstreamBody(openAiRequest, key, route);
        } catch (IllegalStateException e) {
            permit.release();
            route.slot().release();
            throw e;
        }
        StreamCall call = new StreamCall(endpoint, key, requestId, route, admitted.promptEstimate(), clientStreams,
                clientWantsUsage, body, permit, listener, affinityKey, openAiRequest, ChatRequests.choices(openAiRequest));
        activeStreams.incrementAndGet();
        call.connect();
        return call;
    }

    /** The upstream request: the client's, rewritten, with the system prompt of the model that serves. */
    private byte[] upstreamBody(ObjectNode openAiRequest, ApiKey key, Degradation.Route route) {
        ObjectNode upstreamRequest = rewriter.upstreamRequest(openAiRequest, key, route.model());
        if (route.fallbackFrom() != null) {
            upstreamRequest.put("model", route.model());
        }
        try {
            return mapper.writeValueAsBytes(upstreamRequest);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The state of one stream across its attempts (one per upstream tried). */
    private final class StreamCall implements ChatStreamHandle {
        private final GenerationEndpoint endpoint;
        private final ApiKey key;
        private final String requestId;
        private final int promptEstimate;
        /** For the usage row: whether the client asked for a stream (the upstream is always asked for one). */
        private final boolean clientStreams;
        private final boolean clientWantsUsage;
        /** what the upstream is sent; a fallback (before any event) replaces it with its own, as its route and slot */
        private volatile byte[] body;
        private final RateLimitPermit permit;
        private volatile Degradation.Route route;
        private volatile AdaptiveLimiter.Slot slot;
        private final ObjectNode clientRequest;
        private final String affinityKey;
        private final ChatStreamListener listener;
        private final long startNanos = System.nanoTime();
        private volatile Failover failover;
        private final AtomicBoolean done = new AtomicBoolean();
        private final AtomicBoolean opened = new AtomicBoolean();
        private final ContentFilter.Output filterOutput;
        /** The answer's text as the client may see it (content safety); touched on the OkHttp thread only. */
        private final FilteredChunks filtered;

        private volatile String model;
        private volatile UpstreamLease lease;
        private volatile EventSource source;
        private volatile boolean relayedAny;
        private volatile long firstTokenNanos;
        private volatile int contentChunks;
        private volatile String finishReason;
        private volatile ChatUsage reportedUsage;
        /** The request's n; a stream is a whole answer only once each of its choices has a finish_reason. */
        private final int choiceCount;
        private final Set<Integer> finishedChoices = ConcurrentHashMap.newKeySet();

        StreamCall(GenerationEndpoint endpoint, ApiKey key, String requestId, Degradation.Route route,
                int promptEstimate, boolean clientStreams, boolean clientWantsUsage, byte[] body,
                RateLimitPermit permit, ChatStreamListener listener, String affinityKey, ObjectNode clientRequest,
                int choiceCount) {
            this.endpoint = endpoint;
            this.choiceCount = choiceCount;
            this.key = key;
            this.affinityKey = affinityKey;
            this.clientRequest = clientRequest;
            this.requestId = requestId;
            this.route = route;
            this.slot = route.slot();
            this.model = route.model();
            this.promptEstimate = promptEstimate;
            this.clientStreams = clientStreams;
            this.clientWantsUsage = clientWantsUsage;
            this.body = body;
            this.permit = permit;
            this.listener = listener;
            this.failover = new Failover(pool, properties.timeouts().read(), requestId, affinityKey, model);
            this.filterOutput = contentFilter.forStream(key.id(), requestId);
            this.filtered = new FilteredChunks(filterOutput, endpoint);
        }

        /** Tries the next upstream, or fails the stream when none is left. */
        synchronized void connect() {
            if (done.get()) {
                return;
            }
            Optional<UpstreamLease> next = failover.next();
            if (next.isEmpty()) {
                if (!relayedAny && fallBack()) {
                    connect();
                    return;
                }
                fail(failover.unavailable());
                return;
            }
            UpstreamLease current = next.get();
            lease = current;
            Request request = new Request.Builder()
                    .url(current.upstream().url(endpoint.upstreamPath))
                    .header("Accept", "text/event-stream")
                    .header("X-Request-Id", requestId)
                    .post(RequestBody.create(body, JSON))
                    .build();
            source = eventSources.newEventSource(request, new Attempt(current));
        }

        /**
         * Every replica of the pool failed or was busy before any event: the pool's fallback route serves
         * instead, when the key allows it and the fallback pool has room (degradation). False: no fallback.
         */
        private boolean fallBack() {
            if (route.fallbackFrom() != null) {
                return false; // one hop only
            }
            Optional<Degradation.Route> fallback = degradation.fallback(key, route.model());
            if (fallback.isEmpty()) {
                return false;
            }
            failover.unavailable(); // settles a replica's undecided error; it is not the answer now
            slot.release();
            Degradation.Route next = fallback.get();
            route = next;
            slot = next.slot();
            model = next.model();
            body = upstreamBody(clientRequest, key, next);
            failover = new Failover(pool, properties.timeouts().read(), requestId, affinityKey, next.model());
            log.info("request {}: no replica of {} could serve; falling back to {}", requestId, next.fallbackFrom(),
                    next.model());
            return true;
        }

        /** Called by cancel() after it claimed the end: stops whatever attempt runs now. */
        private synchronized void stopCurrentAttempt() {
            EventSource current = source;
            if (current != null) {
                current.cancel();
            }
            UpstreamLease currentLease = lease;
            if (currentLease != null) {
                currentLease.released();
            }
            failover.abandoned();
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
            if (route.fallbackFrom() == null) {
                return permit.headers();
            }
            Map<String, String> headers = new java.util.LinkedHashMap<>(permit.headers());
            headers.putAll(route.headers());
            return headers;
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
            failover.served();
            if (!"content_filter".equals(finishReason)) {
                ObjectNode tail = filtered.tail(); // held text of a stream that ended without a finish_reason
                if (tail != null) {
                    safely(() -> listener.onChunk(tail.toString(), tail));
                    String text = endpoint.text(tail.path("choices").path(0));
                    if (!text.isEmpty()) {
                        safely(() -> listener.onDelta(text));
                    }
                }
            }
            ChatUsage usage = account(EndReason.ofFinishReason(finishReason), 200);
            safely(() -> listener.onFinish(finishReason, usage));
        }

        /** A block list matched: the filtered chunk is the last one, the upstream stops generating. */
        private void blocked() {
            finishReason = "content_filter";
            finish();
            EventSource current = source;
            if (current != null) {
                current.cancel();
            }
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
            slot.release();
            filterOutput.record();
            ChatUsage reported = reportedUsage;
            ChatUsage billed = reported != null ? reported
                    : new ChatUsage(relayedAny ? promptEstimate : 0, contentChunks, false);
            permit.finish(billed.totalTokens());
            long now = System.nanoTime();
            Long ttft = firstTokenNanos == 0 ? null : TimeUnit.NANOSECONDS.toMillis(firstTokenNanos - startNanos);
            UpstreamLease current = lease;
            usage.record(new UsageRecord(requestId, key.id(), endpoint.usageName,
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
                attemptLease.opened();
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
                    settle(eventSource, AttemptOutcome.ofFailure(attemptLease.upstream(),
                            new IOException("upstream sent an event that is not JSON")));
                    return;
                }
                JsonNode error = chunk.get("error");
                if (error != null && error.isObject()) {
                    if (!relayedAny) {
                        settle(eventSource, AttemptOutcome.ofErrorEvent(attemptLease.upstream(), data));
                    } else {
                        boolean requestsFault = AttemptOutcome.causedByRequest(error);
                        if (requestsFault) {
                            attemptLease.succeeded(); // the replica works; this request broke its own generation
                        } else {
                            attemptLease.failed(new UpstreamLease.UpstreamFailure("error event mid-stream"));
                        }
                        fail(new ChatStreamError(requestsFault ? 422 : 502, error.path("type").asText("server_error"),
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
                if (!relayedAny) {
                    failover.served(); // the first event: this attempt is the one that serves
                    attemptLease.started();
                    slot.firstToken();
                }
                relayedAny = true;
                JsonNode choice = choices.path(0);
                String text = endpoint.text(choice);
                if (!text.isEmpty()) {
                    if (contentChunks++ == 0) {
                        firstTokenNanos = System.nanoTime(); // TTFT: the first text, not a role-only chunk
                    }
                }
                if (choice.path("finish_reason").isTextual()) {
                    finishReason = choice.path("finish_reason").asText();
                    finishedChoices.add(choice.path("index").asInt(0));
                }
                if (done.get()) {
                    return; // cancelled while this event was parsed: no new callback starts after cancel()
                }
                FilteredChunks.Result result = chunk instanceof ObjectNode object ? filtered.apply(data, object)
                        : new FilteredChunks.Result(data, chunk, text, false, null);
                if (result.skip()) {
                    return; // all of its text is held back until the next chunk shows how it goes on
                }
                safely(() -> listener.onChunk(result.data(), result.chunk()));
                if (!result.text().isEmpty() && !done.get()) {
                    safely(() -> listener.onDelta(result.text()));
                }
                if (result.blockedBy() != null) {
                    blocked();
                }
            }

            @Override
            public void onClosed(EventSource eventSource) {
                if (stale()) {
                    return;
                }
                if (finishReason != null && finishedChoices.size() >= choiceCount) {
                    finish(); // the upstream ended without [DONE] after every choice's finish_reason: complete
                } else {
                    settle(eventSource, AttemptOutcome.ofFailure(attemptLease.upstream(),
                            new IOException("upstream closed the stream before it finished")));
                }
            }

            @Override
            public void onFailure(EventSource eventSource, Throwable t, Response response) {
                if (stale()) {
                    return;
                }
                AttemptOutcome outcome;
                if (t == null && response != null && !response.isSuccessful()) {
                    // read the error body before cancelling: cancelling the call closes it
                    outcome = AttemptOutcome.ofResponse(attemptLease.upstream(), response.code(),
                            response.header("Retry-After"), readBody(response));
                } else {
                    outcome = AttemptOutcome.ofFailure(attemptLease.upstream(), t != null ? t
                            : new IOException("HTTP " + (response != null ? response.code() : 0)
                                    + " without an event stream"));
                }
                if (response != null) {
                    response.close();
                }
                settle(eventSource, outcome);
            }

            /** Ends this attempt; before the first event {@link Failover} decides what follows. */
            private void settle(EventSource eventSource, AttemptOutcome outcome) {
                eventSource.cancel();
                if (!relayedAny) {
                    Optional<ChatStreamError> stop = failover.settle(attemptLease, outcome);
                    if (stop.isPresent()) {
                        fail(stop.get());
                    } else {
                        connect();
                    }
                    return;
                }
                // part of the answer reached the client: never retried elsewhere
                if (outcome.kind() == AttemptOutcome.Kind.TIMEOUT) {
                    attemptLease.released();
                    log.warn("stream {}: upstream silent mid-stream past the read timeout", requestId);
                    fail(failover.timeout(true));
                } else {
                    attemptLease.failed(outcome.failure());
                    log.warn("stream {}: upstream broke off mid-stream: {}", requestId, outcome.description());
                    fail(new ChatStreamError(502, "server_error", "upstream_error",
                            "The model-service stream broke off: " + outcome.description(), null, 0, true));
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
    }
}
