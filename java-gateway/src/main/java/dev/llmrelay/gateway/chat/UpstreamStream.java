package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.degrade.Degradation;
import dev.llmrelay.gateway.upstream.AttemptOutcome;
import dev.llmrelay.gateway.upstream.UpstreamLease;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import dev.llmrelay.gateway.usage.EndReason;
import io.opentelemetry.api.trace.Span;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.sse.EventSource;
import okhttp3.sse.EventSourceListener;

/**
 * One admitted request's upstream attempts: a replica at a time ({@link Failover}) until one sends the first
 * event, then the pool's fallback route when every replica failed or was busy, then relaying that attempt's
 * chunks through the {@link StreamOutput} to the listener. Ends once (finished, failed, blocked by the
 * content filter or cancelled) and reports that end to {@link StreamAccounting}. Callbacks of an abandoned
 * attempt are ignored.
 */
final class UpstreamStream implements ChatStreamHandle {

    private static final Logger log = LoggerFactory.getLogger(UpstreamStream.class);
    private static final MediaType JSON = MediaType.get("application/json");

    /** What every stream shares (ChatStreamService's). */
    record Parts(UpstreamPool pool, Duration readTimeout, EventSource.Factory eventSources, Degradation degradation,
            UpstreamRequestStage upstreamRequests, StreamAccounting accounting, ObjectMapper mapper) {
    }

    private final Parts parts;
    private final GenerationRequest request;
    private final StreamOutput output;
    private final ChatStreamListener listener;
    private final long startNanos = System.nanoTime();
    private final AtomicBoolean done = new AtomicBoolean();
    private final AtomicBoolean opened = new AtomicBoolean();

    private volatile Failover failover;
    private volatile UpstreamLease lease;
    private volatile EventSource source;
    /** the attempt now running (the last one, once the stream ended) */
    private volatile Attempt attempt;
    /** the serving attempt's response id (its first chunk's) */
    private volatile String responseId;
    private volatile boolean relayedAny;
    /** when the attempt that serves sent its request, and when the first text was written to the client */
    private volatile long servingSentNanos;
    private volatile long firstWrittenNanos;

    UpstreamStream(Parts parts, GenerationRequest request, StreamOutput output, ChatStreamListener listener) {
        this.parts = parts;
        this.request = request;
        this.output = output;
        this.listener = listener;
        this.failover = newFailover(request.route.model());
        parts.accounting().opened();
    }

    private Failover newFailover(String model) {
        return new Failover(parts.pool(), parts.readTimeout(), request.requestId, request.affinityKey, model);
    }

    /** Tries the next upstream, or the fallback route, or fails the stream when none is left. */
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
        Span span = request.trace.attempt(request, current.upstream());
        Request.Builder http = new Request.Builder()
                .url(current.upstream().url(request.endpoint.upstreamPath))
                .header("Accept", "text/event-stream")
                .header("X-Request-Id", request.requestId)
                .post(RequestBody.create(request.upstreamBody, JSON));
        request.trace.inject(span, http);
        Attempt started = new Attempt(current, span);
        attempt = started;
        source = parts.eventSources().newEventSource(http.build(), started);
    }

    /**
     * Every replica of the pool failed or was busy before any event: the pool's fallback route serves
     * instead, when the key allows it and the fallback pool has room (degradation). False: no fallback.
     */
    private boolean fallBack() {
        if (request.route.fallbackFrom() != null) {
            return false; // one hop only
        }
        Optional<Degradation.Route> fallback = parts.degradation().fallback(request.key, request.route.model());
        if (fallback.isEmpty()) {
            return false;
        }
        failover.unavailable(); // settles a replica's undecided error; it is not the answer now
        request.route.slot().release();
        Degradation.Route next = fallback.get();
        request.route = next;
        request.upstreamBody = parts.upstreamRequests().body(request, next);
        output.servedBy(next.model());
        failover = newFailover(next.model());
        log.info("request {}: no replica of {} could serve; falling back to {}", request.requestId,
                next.fallbackFrom(), next.model());
        return true;
    }

    @Override
    public void cancel() {
        if (!done.compareAndSet(false, true)) {
            return;
        }
        synchronized (this) { // stops whatever attempt runs now
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
        log.debug("stream {} cancelled by its client", request.requestId);
        account(EndReason.client_cancelled, 499);
    }

    @Override
    public Map<String, String> rateLimitHeaders() {
        Degradation.Route route = request.route;
        if (route.fallbackFrom() == null) {
            return request.permit.headers();
        }
        Map<String, String> headers = new LinkedHashMap<>(request.permit.headers());
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
        ObjectNode tail = output.tail(); // held text of a stream that ended without a finish_reason
        if (tail != null) {
            safely(() -> listener.onChunk(tail.toString(), tail));
            String text = request.endpoint.text(tail.path("choices").path(0));
            if (!text.isEmpty()) {
                safely(() -> listener.onDelta(text));
            }
        }
        ChatUsage billed = account(EndReason.ofFinishReason(output.finishReason()), 200);
        safely(() -> listener.onFinish(output.finishReason(), billed));
    }

    /** A block list matched: the filtered chunk is the last one, the upstream stops generating. */
    private void blocked() {
        output.blocked();
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

    private ChatUsage account(EndReason reason, int status) {
        ChatUsage billed = parts.accounting().ended(request, output, lease, relayedAny, startNanos, reason, status,
                servingSentNanos, firstWrittenNanos);
        Attempt last = attempt;
        if (last != null && last.ended.compareAndSet(false, true)) {
            long firstToken = output.firstTokenNanos();
            RequestTrace.served(last.span, output.model(), responseId, output.finishReason(), billed,
                    firstToken != 0 && servingSentNanos != 0 ? firstToken - servingSentNanos : 0, reason, status);
        }
        return billed;
    }

    private void safely(Runnable callback) {
        try {
            callback.run();
        } catch (RuntimeException e) {
            log.warn("stream {}: listener failed", request.requestId, e);
        }
    }

    /** Events of one upstream attempt. */
    private final class Attempt extends EventSourceListener {
        private final UpstreamLease attemptLease;
        private final Span span;
        /** whether its span ended (as a failed attempt, or with the stream) */
        private final AtomicBoolean ended = new AtomicBoolean();
        /** made just before its request goes out (newEventSource) */
        private final long sentNanos = System.nanoTime();

        Attempt(UpstreamLease attemptLease, Span span) {
            this.attemptLease = attemptLease;
            this.span = span;
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
            long received = System.nanoTime();
            if (stale()) {
                return;
            }
            if ("[DONE]".equals(data.strip())) {
                finish();
                return;
            }
            JsonNode chunk;
            try {
                chunk = parts.mapper().readTree(data);
            } catch (IOException e) {
                settle(eventSource, AttemptOutcome.ofFailure(attemptLease.upstream(),
                        new IOException("upstream sent an event that is not JSON")));
                return;
            }
            JsonNode error = chunk.get("error");
            if (error != null && error.isObject()) {
                errorEvent(eventSource, error, data);
                return;
            }
            String relayed = output.observe(data, chunk);
            if (relayed == null) {
                return; // the usage-only chunk the client never asked for
            }
            if (!relayedAny) {
                servingSentNanos = sentNanos;
                responseId = chunk.path("id").isTextual() ? chunk.get("id").asText() : null;
                failover.served(); // the first event: this attempt is the one that serves
                attemptLease.started();
                request.route.slot().firstToken();
            }
            relayedAny = true;
            if (done.get()) {
                return; // cancelled while this event was parsed: no new callback starts after cancel()
            }
            FilteredChunks.Result result = output.filter(relayed, chunk);
            if (result.skip()) {
                return; // all of its text is held back until the next chunk shows how it goes on
            }
            safely(() -> listener.onChunk(result.data(), result.chunk()));
            long written = System.nanoTime();
            parts.accounting().relayed(written - received);
            if (firstWrittenNanos == 0 && output.firstTokenNanos() != 0) {
                firstWrittenNanos = written;
            }
            if (!result.text().isEmpty() && !done.get()) {
                safely(() -> listener.onDelta(result.text()));
            }
            if (result.blockedBy() != null) {
                blocked();
            }
        }

        /** An error event: before the first chunk the failover decides; after it, the stream ends with it. */
        private void errorEvent(EventSource eventSource, JsonNode error, String data) {
            if (!relayedAny) {
                settle(eventSource, AttemptOutcome.ofErrorEvent(attemptLease.upstream(), data));
                return;
            }
            boolean requestsFault = AttemptOutcome.causedByRequest(error);
            if (requestsFault) {
                attemptLease.succeeded(); // the replica works; this request broke its own generation
            } else {
                attemptLease.failed(new UpstreamLease.UpstreamFailure("error event mid-stream"));
            }
            fail(new ChatStreamError(requestsFault ? 422 : 502, error.path("type").asText("server_error"),
                    error.path("code").asText("upstream_error"),
                    error.path("message").asText("The model-service reported an error"), data, 0, true));
        }

        @Override
        public void onClosed(EventSource eventSource) {
            if (stale()) {
                return;
            }
            if (output.complete()) {
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
                if (ended.compareAndSet(false, true)) {
                    RequestTrace.failed(span, outcome); // a sibling attempt may follow
                }
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
                log.warn("stream {}: upstream silent mid-stream past the read timeout", request.requestId);
                fail(failover.timeout(true));
            } else {
                attemptLease.failed(outcome.failure());
                log.warn("stream {}: upstream broke off mid-stream: {}", request.requestId, outcome.description());
                fail(new ChatStreamError(502, "server_error", "upstream_error",
                        "The model-service stream broke off: " + outcome.description(), null, 0, true));
            }
        }

        private static String readBody(Response response) {
            try (response) {
                return response.body().string();
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }
    }
}
