package dev.llmrelay.gateway.chat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.MediaType;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.system.GatewayErrorAdvice;

/**
 * Writes one upstream stream to a /v1 client as OpenAI-style SSE: the chunks as the upstream sent them,
 * {@code : ping} comments during silences, and {@code data: [DONE]} at the end, after an error event too.
 * A failed write or a closed emitter cancels the upstream call at once.
 */
final class SseRelay implements ChatStreamListener {

    private static final Logger log = LoggerFactory.getLogger(SseRelay.class);
    private static final MediaType TEXT_UTF8 = new MediaType("text", "plain", StandardCharsets.UTF_8);
    private static final String DONE = "data: [DONE]\n\n";

    /** The first thing that happens: null when the upstream opened, the error when it never did. */
    private final CompletableFuture<ChatStreamError> start = new CompletableFuture<>();
    private final SseEmitter emitter;
    private final SseHeartbeats heartbeats;
    private final ObjectMapper mapper;
    private volatile ChatStreamHandle handle;
    private volatile boolean clientGone;
    private volatile ScheduledFuture<?> heartbeat;

    SseRelay(Duration timeout, SseHeartbeats heartbeats, ObjectMapper mapper) {
        this.emitter = new SseEmitter(timeout.toMillis());
        this.heartbeats = heartbeats;
        this.mapper = mapper;
        emitter.onTimeout(() -> {
            log.info("stream reached its time limit; cancelling upstream");
            cancelUpstream();
            emitter.complete();
        });
        emitter.onError(e -> cancelUpstream());
        emitter.onCompletion(this::cancelUpstream); // a no-op when the stream already ended
    }

    SseEmitter emitter() {
        return emitter;
    }

    void attach(ChatStreamHandle handle) {
        this.handle = handle;
        if (clientGone) {
            handle.cancel();
        }
    }

    /** Completes once the upstream opened (null) or the stream failed before that (the error). */
    CompletableFuture<ChatStreamError> started() {
        return start;
    }

    @Override
    public void onOpen() {
        heartbeat = heartbeats.every(() -> write(": ping\n\n"));
        start.complete(null);
    }

    @Override
    public void onChunk(String data, JsonNode chunk) {
        write("data: " + data + "\n\n");
    }

    @Override
    public void onFinish(String finishReason, ChatUsage usage) {
        stopHeartbeat();
        // the content filter ended the answer: after its last chunk, an error event says why
        String end = "content_filter".equals(finishReason) ? "data: " + errorEvent(new ChatStreamError(200,
                "invalid_request_error", "content_filter", "The answer was stopped by the content filter.", null, 0,
                true)) + "\n\n" + DONE : DONE;
        if (write(end)) {
            emitter.complete();
        }
    }

    @Override
    public void onError(ChatStreamError error) {
        stopHeartbeat();
        if (start.complete(error)) {
            return; // nothing was sent yet: the controller answers with a plain HTTP error
        }
        String event = error.upstreamBody() != null && error.relayedAny() ? error.upstreamBody()
                : errorEvent(error);
        if (write("data: " + event + "\n\n" + DONE)) {
            emitter.complete();
        }
    }

    String errorEvent(ChatStreamError error) {
        try {
            return mapper.writeValueAsString(
                    GatewayErrorAdvice.openAiBody(error.message(), error.type(), null, error.code()));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Sends complete SSE text (one or more events, blank-line terminated) as one part: one converter
     * write and one flush per event, framed as the model-service frames it ({@code data: ...}).
     * False (and the upstream cancelled) when the client is gone.
     */
    private boolean write(String events) {
        if (clientGone) {
            return false;
        }
        try {
            emitter.send(Set.of(new ResponseBodyEmitter.DataWithMediaType(events, TEXT_UTF8)));
            return true;
        } catch (IOException | IllegalStateException e) {
            // the container completes the request itself after a failed write
            log.debug("client left: {}", e.toString());
            cancelUpstream();
            return false;
        }
    }

    private void cancelUpstream() {
        clientGone = true;
        stopHeartbeat();
        ChatStreamHandle current = handle;
        if (current != null) {
            current.cancel();
        }
    }

    private void stopHeartbeat() {
        ScheduledFuture<?> current = heartbeat;
        if (current != null) {
            current.cancel(false);
        }
    }
}
