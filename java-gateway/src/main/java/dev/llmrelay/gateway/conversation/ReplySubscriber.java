package dev.llmrelay.gateway.conversation;

import java.io.IOException;
import java.util.List;

import java.nio.charset.StandardCharsets;

import org.springframework.http.MediaType;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;

/**
 * One open EventSource connection following a reply. It keeps its own cursor (the id of the
 * last event written), so whichever thread calls {@link #drain} (the upstream's callback, or
 * the request that subscribed) writes each event exactly once and in order.
 *
 * <p>Events go out as ready-made text/event-stream bytes (one write and flush per event,
 * shared by all readers) rather than through SseEmitter's per-field message conversion.
 */
final class ReplySubscriber {

    /** Reconnect delay asked of EventSource after a drop (browsers default to about 3 s). */
    static final long RECONNECT_MS = 1000;

    static final byte[] GREETING = ("retry: " + RECONNECT_MS + "\n: reply stream\n\n")
            .getBytes(StandardCharsets.US_ASCII);
    static final byte[] PING = ": ping\n\n".getBytes(StandardCharsets.US_ASCII);

    private final ResponseBodyEmitter emitter;
    private boolean greeted;
    private final Runnable release;
    private long cursor;
    private boolean closed;

    /**
     * @param release ends the HTTP exchange after a failed write; the servlet container does not
     *                always report such a failure back (then the request would stay open until the
     *                emitter's timeout and hold up a graceful shutdown)
     */
    ReplySubscriber(ResponseBodyEmitter emitter, long lastEventId, Runnable release) {
        this.emitter = emitter;
        this.cursor = lastEventId;
        this.release = release;
    }

    /** Writes every event after the cursor; completes the response after the last one. */
    synchronized void drain(ReplyGeneration generation) {
        if (closed) {
            return;
        }
        List<ReplyGeneration.Event> pending = generation.eventsAfter(cursor);
        try {
            if (!greeted) {
                // Sent at once, so the browser sees the stream open even during a long prefill.
                emitter.send(GREETING, MediaType.TEXT_EVENT_STREAM);
                greeted = true;
            }
            for (ReplyGeneration.Event event : pending) {
                emitter.send(event.wire(), MediaType.TEXT_EVENT_STREAM);
                cursor = event.id();
            }
        } catch (IOException | IllegalStateException gone) {
            // The browser went away (it will reconnect with Last-Event-ID if it can).
            abandon(generation);
            return;
        }
        if (generation.isComplete() && cursor >= generation.lastEventId()) {
            closed = true;
            generation.unsubscribe(this);
            emitter.complete();
        }
    }

    /** A comment line that reveals a dead connection during long silences (a long prefill). */
    synchronized void ping(ReplyGeneration generation) {
        if (closed) {
            return;
        }
        try {
            emitter.send(PING, MediaType.TEXT_EVENT_STREAM);
        } catch (IOException | IllegalStateException gone) {
            abandon(generation);
        }
    }

    private void abandon(ReplyGeneration generation) {
        close(generation);
        release.run();
    }

    /** Ends the response now (gateway shutting down); the browser may reconnect elsewhere. */
    synchronized void end(ReplyGeneration generation) {
        if (!closed) {
            close(generation);
            emitter.complete();
        }
    }

    synchronized void close(ReplyGeneration generation) {
        closed = true;
        generation.unsubscribe(this);
    }
}
