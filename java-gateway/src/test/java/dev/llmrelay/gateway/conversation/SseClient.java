package dev.llmrelay.gateway.conversation;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.ObjectMapper;

/** Reads a text/event-stream the way EventSource does: id, event, data lines, comments skipped. */
public final class SseClient implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    public record Event(String id, String name, String data) {
    }

    final HttpResponse<InputStream> response;
    private final BufferedReader reader;

    private SseClient(HttpResponse<InputStream> response) {
        this.response = response;
        this.reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
    }

    public static SseClient open(HttpClient http, String url, String cookie, String lastEventId)
            throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60))
                .header("Accept", "text/event-stream").header("Cookie", cookie).GET();
        if (lastEventId != null) {
            request.header("Last-Event-ID", lastEventId);
        }
        return new SseClient(http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream()));
    }

    public int status() {
        return response.statusCode();
    }

    /** The next event, or null at the end of the stream. */
    public Event next() throws IOException {
        String id = null;
        String name = "message";
        StringBuilder data = null;
        String line;
        while ((line = reader.readLine()) != null) {
            if (line.isEmpty()) {
                if (data != null) {
                    return new Event(id, name, data.toString());
                }
                continue;
            }
            if (line.startsWith(":")) {
                continue;
            }
            int colon = line.indexOf(':');
            String field = colon < 0 ? line : line.substring(0, colon);
            String value = colon < 0 ? "" : line.substring(colon + 1);
            if (value.startsWith(" ")) {
                value = value.substring(1);
            }
            switch (field) {
                case "id" -> id = value;
                case "event" -> name = value;
                case "data" -> data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
                default -> {
                }
            }
        }
        return null;
    }

    @Override
    public void close() throws IOException {
        reader.close();
    }

    /** The page's stream of one reply. */
    public static String streamPath(String messageId) {
        return "/api/chat/messages/" + messageId + "/stream";
    }

    /** Every event until the server ends the stream. */
    public List<Event> drain() throws IOException {
        List<Event> events = new ArrayList<>();
        Event event;
        while ((event = next()) != null) {
            events.add(event);
        }
        return events;
    }

    /** The reply text carried by the {@code token} events. */
    public static String textOf(List<Event> events) throws IOException {
        StringBuilder text = new StringBuilder();
        for (Event event : events) {
            if (event.name().equals("token")) {
                text.append(JSON.readTree(event.data()).path("text").asText());
            }
        }
        return text.toString();
    }
}
