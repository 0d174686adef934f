package dev.llmrelay.gateway.conversation;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * One assistant reply being generated: the log of its stream events (ids 1, 2, 3...) kept in
 * memory so a browser that reconnects with Last-Event-ID gets exactly the events after that id,
 * then follows live; and the browsers following it now.
 *
 * <p>How it ends is written to the database before the final {@code finish} / {@code error}
 * event is logged, so a page that sees the end and reloads finds the stored state.
 */
final class ReplyGeneration implements ReplySource.ReplyListener {

    /** One stream event; {@code wire} is its text/event-stream form, built once for every reader. */
    record Event(long id, String name, String data, byte[] wire) {

        static Event of(long id, String name, String data) {
            // data is one line of JSON (no raw newlines), so one data: field carries it
            String text = "id: " + id + "\nevent: " + name + "\ndata: " + data + "\n\n";
            return new Event(id, name, data, text.getBytes(StandardCharsets.UTF_8));
        }
    }

    /** Stores how a reply ended (content, status...) before its last event goes out. */
    interface Ending {

        void store(ReplyGeneration generation, String content, String status, String finishReason,
                String errorMessage, Object usage);
    }

    /** Where else a reply's events go as they are logged (other gateway instances); none by default. */
    interface Feed {

        Feed NONE = (messageId, event) -> { };

        void publish(String messageId, Event event);
    }

    private final String messageId;
    private final ObjectMapper json;
    private final Ending ending;
    private final Feed feed;
    private final List<Event> events = new ArrayList<>();
    private final StringBuilder text = new StringBuilder();
    private final Set<ReplySubscriber> subscribers = ConcurrentHashMap.newKeySet();
    private boolean ended;              // no more tokens are taken (guarded by this)
    private volatile boolean complete;  // the last event is in the log
    private volatile ReplySource.ReplyHandle handle;
    private volatile boolean cancelled;
    private volatile long retryAfter;

    ReplyGeneration(String messageId, ObjectMapper json, Ending ending, Feed feed) {
        this.messageId = messageId;
        this.json = json;
        this.ending = ending;
        this.feed = feed;
    }

    String messageId() {
        return messageId;
    }

    void attach(ReplySource.ReplyHandle upstream) {
        this.handle = upstream;
        if (cancelled) {
            upstream.cancel();
        }
    }

    // ---- events from the upstream ------------------------------------------------------

    @Override
    public void onToken(String token) {
        if (token == null || token.isEmpty()) {
            return;
        }
        synchronized (this) {
            if (ended) {
                return;
            }
            text.append(token);
            append("token", Map.of("text", token, "message_id", messageId));
        }
        deliver();
    }

    @Override
    public void onFinish(String finishReason, Object usage) {
        end(ChatMessage.COMPLETE, finishReason == null ? "stop" : finishReason, null, null, usage);
    }

    @Override
    public void onError(String code, String message, long retryAfterSeconds) {
        retryAfter = retryAfterSeconds;
        end(ChatMessage.ERROR, null, code == null ? "upstream_error" : code,
                message == null ? "The model failed to answer." : message, null);
    }

    /** Stop pressed: stops the upstream and ends the reply as stopped, keeping its text. */
    void cancel() {
        cancelled = true;
        ReplySource.ReplyHandle upstream = handle;
        if (upstream != null) {
            upstream.cancel();
        }
        end(ChatMessage.STOPPED, "stopped", null, null, null);
    }

    private void end(String status, String finishReason, String code, String errorMessage, Object usage) {
        String content;
        synchronized (this) {
            if (ended) {
                return;
            }
            ended = true;
            content = text.toString();
        }
        ending.store(this, content, status, finishReason, errorMessage, usage);
        synchronized (this) {
            if (ChatMessage.ERROR.equals(status)) {
                Map<String, Object> data = new LinkedHashMap<>();
                data.put("message_id", messageId);
                data.put("code", code);
                data.put("message", errorMessage);
                if (retryAfter > 0) {
                    data.put("retry_after", retryAfter);
                }
                append("error", data);
            } else {
                Map<String, Object> data = new LinkedHashMap<>();
                data.put("message_id", messageId);
                data.put("finish_reason", finishReason);
                data.put("usage", usage);
                append("finish", data);
            }
            complete = true;
        }
        deliver();
    }

    private void append(String name, Map<String, Object> data) {
        try {
            Event event = Event.of(events.size() + 1L, name, json.writeValueAsString(data));
            events.add(event);
            feed.publish(messageId, event);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("stream event not serialisable", e);
        }
    }

    // ---- followers ----------------------------------------------------------------------

    void subscribe(ReplySubscriber subscriber) {
        subscribers.add(subscriber);
        subscriber.drain(this);
    }

    void unsubscribe(ReplySubscriber subscriber) {
        subscribers.remove(subscriber);
    }

    private void deliver() {
        for (ReplySubscriber subscriber : subscribers) {
            subscriber.drain(this);
        }
    }

    void endSubscribers() {
        for (ReplySubscriber subscriber : subscribers) {
            subscriber.end(this);
        }
    }

    void ping() {
        for (ReplySubscriber subscriber : subscribers) {
            subscriber.ping(this);
        }
    }

    synchronized List<Event> eventsAfter(long eventId) {
        int from = (int) Math.min(Math.max(eventId, 0), events.size());
        return new ArrayList<>(events.subList(from, events.size()));
    }

    synchronized long lastEventId() {
        return events.size();
    }

    synchronized String textSoFar() {
        return text.toString();
    }

    boolean isComplete() {
        return complete;
    }

    int subscriberCount() {
        return subscribers.size();
    }
}
