package dev.llmrelay.gateway.system;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * A lone surrogate ({@code "\ud800"}) is legal JSON text. Whatever field carries it, the gateway must
 * answer in its error shape (never 500), keep it in usage rows and stored messages, and every body it
 * writes must carry it back unchanged (escaped), not as {@code ?} or U+FFFD. The upstream is scripted:
 * it echoes what it received, as an error or as the streamed answer.
 */
class LoneSurrogateTest extends GatewayTestSupport {

    /** A lone high surrogate, as a client's {@code "\ud800"} decodes. */
    static final String LONE = "\ud800";
    /** The same, as JSON text on the wire (ASCII). */
    static final String LONE_JSON = "\\ud800";

    @Autowired
    ObjectMapper json;

    /** The scripted upstream's answer: the model name it received, in a 404 error, as JSON escapes. */
    private MockResponse echoModelNotFound(RecordedRequest request) {
        try {
            JsonNode body = json.readTree(request.getBody().utf8());
            Map<String, Object> error = Map.of("message", "The model '" + body.path("model").asText()
                    + "' does not exist", "type", "invalid_request_error", "param", "model", "code", "model_not_found");
            return new MockResponse.Builder().code(404).setHeader("Content-Type", "application/json")
                    .body(new String(json.writeValueAsBytes(Map.of("error", error)), StandardCharsets.UTF_8)).build();
        } catch (Exception e) {
            return new MockResponse.Builder().code(500).build();
        }
    }

    /** The scripted upstream's answer: streams back the last message's content as one token. */
    private MockResponse echoContentStream(RecordedRequest request) {
        try {
            JsonNode body = json.readTree(request.getBody().utf8());
            JsonNode messages = body.path("messages");
            String content = messages.path(messages.size() - 1).path("content").asText();
            String chunk = new String(json.writeValueAsBytes(Map.of("id", "echo", "object", "chat.completion.chunk",
                    "created", 1, "model", "smollm2", "choices", List.of(Map.of("index", 0,
                            "delta", Map.of("content", content))))), StandardCharsets.UTF_8);
            return new SseScript().event(chunk).event(SseScript.chunk("echo", null, "stop"))
                    .event(SseScript.usageChunk("echo", 3, 1)).done().response();
        } catch (Exception e) {
            return new MockResponse.Builder().code(500).build();
        }
    }

    @Test
    void v1ErrorAnswersCarryALoneSurrogateBackAndTheUsageRowKeepsIt() throws Exception {
        UPSTREAM_A.answer(this::echoModelNotFound);
        UPSTREAM_B.answer(this::echoModelNotFound);
        String key = newKey();
        for (boolean stream : new boolean[] {false, true}) {
            String requestId = "lone-surrogate-404-" + stream;
            String body = "{\"model\":\"" + LONE_JSON + "\",\"stream\":" + stream + ",\"user\":\"" + LONE_JSON
                    + "\",\"messages\":[{\"role\":\"user\",\"content\":\"" + LONE_JSON + "\"}]}";
            try (Response response = client.newCall(chat(key, body, requestId).build()).execute()) {
                assertThat(response.code()).as("stream=" + stream).isEqualTo(404);
                JsonNode error = json.readTree(response.body().bytes()).path("error");
                assertThat(error.path("message").asText()).isEqualTo("The model '" + LONE + "' does not exist");
            }
            assertThat(StoredText.decode((String) usageRow(requestId).get("model"))).isEqualTo(LONE);
        }
        // the upstream got the client's text unchanged, and was not counted as failing
        JsonNode forwarded = json.readTree(UPSTREAM_A.requests().get(0).getBody().utf8());
        assertThat(forwarded.path("user").asText()).isEqualTo(LONE);
        assertThat(pool.upstreams().get(0).breaker().getMetrics().getNumberOfFailedCalls()).isZero();
    }

    /** The scripted upstream's answer: a stream whose first event is an error naming the model it got. */
    private MockResponse echoModelInErrorEvent(RecordedRequest request) {
        try {
            JsonNode body = json.readTree(request.getBody().utf8());
            String event = new String(json.writeValueAsBytes(Map.of("error", Map.of("message", "model '"
                    + body.path("model").asText() + "' failed", "type", "server_error", "code", "internal_error"))),
                    StandardCharsets.UTF_8);
            return new SseScript().event(event).done().response();
        } catch (Exception e) {
            return new MockResponse.Builder().code(500).build();
        }
    }

    @Test
    void v1StreamErrorEventWrittenByTheGatewayKeepsALoneSurrogate() throws Exception {
        UPSTREAM_A.answer(this::echoModelInErrorEvent);
        UPSTREAM_B.answer(this::echoModelInErrorEvent);
        String body = "{\"model\":\"" + LONE_JSON + "\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                + "\"content\":\"hi\"}]}";
        try (Response response = client.newCall(chat(newKey(), body, "lone-surrogate-event").build()).execute()) {
            // the upstream opened the stream (200), so the failure of every attempt comes as an event
            List<String> events = dataEvents(lines(response));
            assertThat(json.readTree(events.get(0)).path("error").path("message").asText())
                    .contains("model '" + LONE + "' failed");
            assertThat(events).last().isEqualTo("[DONE]");
        }
    }

    @Test
    void v1StreamRelaysALoneSurrogateUnchanged() throws Exception {
        UPSTREAM_A.answer(this::echoContentStream);
        UPSTREAM_B.answer(this::echoContentStream);
        String body = "{\"model\":\"smollm2\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a"
                + LONE_JSON + "b\"}]}";
        try (Response response = client.newCall(chat(newKey(), body, "lone-surrogate-stream").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            List<String> events = dataEvents(lines(response));
            assertThat(json.readTree(events.get(0)).path("choices").path(0).path("delta").path("content").asText())
                    .isEqualTo("a" + LONE + "b");
            assertThat(events.get(events.size() - 1)).isEqualTo("[DONE]");
        }
    }

    @Test
    void adminKeyNameWithALoneSurrogateIsStoredAndShownUnchanged() throws Exception {
        Request create = new Request.Builder().url(url("/admin/keys")).header("Authorization", "Bearer test-admin-token")
                .post(RequestBody.create("{\"name\":\"x" + LONE_JSON + "y\"}", JSON)).build();
        long id;
        try (Response response = client.newCall(create).execute()) {
            assertThat(response.code()).isEqualTo(201);
            JsonNode created = json.readTree(response.body().bytes());
            assertThat(created.path("name").asText()).isEqualTo("x" + LONE + "y");
            id = created.path("id").asLong();
        }
        Request read = new Request.Builder().url(url("/admin/keys/" + id))
                .header("Authorization", "Bearer test-admin-token").build();
        try (Response response = client.newCall(read).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(json.readTree(response.body().bytes()).path("name").asText()).isEqualTo("x" + LONE + "y");
        }
    }

    @Test
    void browserApiKeepsALoneSurrogateInMessagesEventsAndProblemDetails() throws Exception {
        UPSTREAM_A.answer(this::echoContentStream);
        UPSTREAM_B.answer(this::echoContentStream);
        String cookie;
        Request signIn = new Request.Builder().url(url("/api/session"))
                .post(RequestBody.create("{\"apiKey\":\"" + newKey() + "\"}", JSON)).build();
        try (Response response = client.newCall(signIn).execute()) {
            assertThat(response.code()).isEqualTo(204);
            cookie = response.header("Set-Cookie").split(";", 2)[0];
        }

        Request unknown = new Request.Builder().url(url("/api/chat/messages")).header("Cookie", cookie)
                .post(RequestBody.create("{\"conversationId\":\"" + LONE_JSON + "\",\"content\":\"hi\"}", JSON))
                .build();
        try (Response response = client.newCall(unknown).execute()) {
            assertThat(response.code()).isEqualTo(404);
            assertThat(response.header("Content-Type")).startsWith("application/problem+json");
            assertThat(json.readTree(response.body().bytes()).path("detail").asText())
                    .isEqualTo("No conversation " + LONE + ".");
        }

        JsonNode sent;
        Request send = new Request.Builder().url(url("/api/chat/messages")).header("Cookie", cookie)
                .post(RequestBody.create("{\"content\":\"a" + LONE_JSON + "b\"}", JSON)).build();
        try (Response response = client.newCall(send).execute()) {
            assertThat(response.code()).isEqualTo(200);
            sent = json.readTree(response.body().bytes());
        }
        Request follow = new Request.Builder().url(url("/api/chat/messages/" + sent.path("messageId").asText()
                + "/stream")).header("Cookie", cookie).build();
        List<String> tokens = new ArrayList<>();
        try (Response response = client.newCall(follow).execute()) {
            for (String data : dataEvents(lines(response))) {
                JsonNode event = json.readTree(data);
                if (event.has("text")) {
                    tokens.add(event.path("text").asText());
                }
            }
        }
        assertThat(tokens).containsExactly("a" + LONE + "b");

        Request conversation = new Request.Builder().url(url("/api/chat/conversations/"
                + sent.path("conversationId").asText())).header("Cookie", cookie).build();
        try (Response response = client.newCall(conversation).execute()) {
            assertThat(response.code()).isEqualTo(200);
            JsonNode detail = json.readTree(response.body().bytes());
            assertThat(detail.path("title").asText()).isEqualTo("a" + LONE + "b");
            assertThat(detail.path("messages").path(0).path("content").asText()).isEqualTo("a" + LONE + "b");
            assertThat(detail.path("messages").path(1).path("content").asText()).isEqualTo("a" + LONE + "b");
        }
    }
}
