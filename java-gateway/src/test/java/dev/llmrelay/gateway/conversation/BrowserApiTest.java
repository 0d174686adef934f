package dev.llmrelay.gateway.conversation;

import static dev.llmrelay.gateway.conversation.SseClient.textOf;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.keys.ApiKeyService;

/**
 * The browser API over real HTTP: a real gateway (random port, H2 in memory) in front of a
 * mockwebserver3 upstream whose stream the test releases chunk by chunk.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class BrowserApiTest {

    private static final String KEY = "sk-browser-test-key";
    private static final GatedUpstream upstream;

    static {
        try {
            upstream = new GatedUpstream();
        } catch (IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.upstreams", upstream::url);
        registry.add("gateway.bootstrap-key", () -> KEY);
        registry.add("gateway.web-dir", () -> "");
        // Tomcat's count of async requests in progress sometimes stays above zero after event-stream
        // clients drop mid-stream, and a graceful shutdown then waits its full 30 s at JVM exit.
        registry.add("server.shutdown", () -> "immediate");
        registry.add("spring.datasource.url", () -> "jdbc:h2:mem:browser-api;DB_CLOSE_DELAY=-1");
    }

    @AfterAll
    static void stopUpstream() {
        upstream.close();
    }

    @LocalServerPort
    int port;

    @Autowired
    ApiKeyService keys;

    private final ObjectMapper json = new ObjectMapper();
    private BrowserHttp browser;
    private String cookie;

    @BeforeEach
    void signIn() throws Exception {
        browser = new BrowserHttp(port);
        cookie = browser.signIn(KEY);
    }

    // ---- session ------------------------------------------------------------------------

    @Test
    void signInSetsAnHttpOnlySameSiteStrictCookieThatIsSecureOnlyOverHttps() throws Exception {
        HttpResponse<String> plain = browser.post("/api/session", "{\"apiKey\":\"" + KEY + "\"}", null);
        assertThat(plain.statusCode()).isEqualTo(204);
        String setCookie = plain.headers().firstValue("Set-Cookie").orElseThrow();
        assertThat(setCookie).startsWith(BrowserSessionService.COOKIE + "=").contains("HttpOnly")
                .contains("SameSite=Strict").contains("Path=/api").doesNotContain("Secure");
        assertThat(setCookie).doesNotContain(KEY);

        HttpResponse<String> behindTls = browser.send(browser.request("/api/session")
                .header("Content-Type", "application/json").header("X-Forwarded-Proto", "https")
                .POST(HttpRequest.BodyPublishers.ofString("{\"apiKey\":\"" + KEY + "\"}")), null);
        assertThat(behindTls.headers().firstValue("Set-Cookie").orElseThrow()).contains("Secure");

        HttpResponse<String> who = browser.get("/api/session", setCookie.split(";", 2)[0]);
        assertThat(who.statusCode()).isEqualTo(200);
        assertThat(json.readTree(who.body()).path("keyName").asText()).isNotBlank();
    }

    @Test
    void wrongKeyAndMissingSessionAreProblemDetails() throws Exception {
        HttpResponse<String> wrong = browser.post("/api/session", "{\"apiKey\":\"sk-wrong\"}", null);
        assertThat(wrong.statusCode()).isEqualTo(401);
        assertThat(wrong.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");
        assertThat(json.readTree(wrong.body()).path("status").asInt()).isEqualTo(401);
        assertThat(wrong.headers().firstValue("Set-Cookie")).isEmpty();

        HttpResponse<String> noSession = browser.get("/api/chat/conversations", null);
        assertThat(noSession.statusCode()).isEqualTo(401);
        assertThat(noSession.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");

        HttpResponse<String> malformed = browser.post("/api/session", "{not json", null);
        assertThat(malformed.statusCode()).isEqualTo(400);
    }

    @Test
    void signOutEndsTheSession() throws Exception {
        HttpResponse<String> out = browser.delete("/api/session", cookie);
        assertThat(out.statusCode()).isEqualTo(204);
        assertThat(out.headers().firstValue("Set-Cookie").orElseThrow()).contains("Max-Age=0");
        assertThat(browser.get("/api/session", cookie).statusCode()).isEqualTo(401);
    }

    // ---- messages and streams -----------------------------------------------------------

    @Test
    void replyStreamsTokensThenFinishIsStoredAndAFinishedStreamAnswers204() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        stream.token("Bonjour").token(", ").token("世界").finish("stop", 7, 3);
        JsonNode sent = send(null, "Say hello");
        String messageId = sent.path("messageId").asText();

        List<SseClient.Event> events = readAll(messageId, null);
        assertThat(events).extracting(SseClient.Event::name).containsExactly("token", "token", "token", "finish");
        assertThat(events).extracting(SseClient.Event::id).containsExactly("1", "2", "3", "4");
        assertThat(textOf(events)).isEqualTo("Bonjour, 世界");
        JsonNode finish = json.readTree(events.get(3).data());
        assertThat(finish.path("message_id").asText()).isEqualTo(messageId);
        assertThat(finish.path("finish_reason").asText()).isEqualTo("stop");
        assertThat(finish.path("usage").path("completion_tokens").asInt()).isEqualTo(3);

        // EventSource reconnects after the end with the last id: 204 makes it stop for good.
        try (SseClient again = browser.stream(messageId, cookie, "4")) {
            assertThat(again.status()).isEqualTo(204);
        }

        JsonNode conversation = json.readTree(browser.get("/api/chat/conversations/" + sent.path("conversationId").asText(),
                cookie).body());
        JsonNode reply = conversation.path("messages").get(1);
        assertThat(conversation.path("messages").get(0).path("content").asText()).isEqualTo("Say hello");
        assertThat(reply.path("content").asText()).isEqualTo("Bonjour, 世界");
        assertThat(reply.path("status").asText()).isEqualTo("complete");
        assertThat(reply.path("finishReason").asText()).isEqualTo("stop");
    }

    @Test
    void reconnectWithLastEventIdContinuesAfterItWithNothingRepeatedOrLost() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        stream.token("one ").token("two ");
        String messageId = send(null, "Count").path("messageId").asText();

        List<SseClient.Event> first = new ArrayList<>();
        try (SseClient client = browser.stream(messageId, cookie, null)) {
            assertThat(client.status()).isEqualTo(200);
            assertThat(client.response.headers().firstValue("Content-Type").orElse("")).startsWith("text/event-stream");
            first.add(client.next());
            first.add(client.next());
        } // the browser drops the connection here
        stream.token("three ").token("four").finish("length", 2, 4);

        List<SseClient.Event> resumed = readAll(messageId, first.get(1).id());
        assertThat(resumed).extracting(SseClient.Event::id).containsExactly("3", "4", "5");
        assertThat(textOf(first) + textOf(resumed)).isEqualTo("one two three four");
        assertThat(json.readTree(resumed.get(2).data()).path("finish_reason").asText()).isEqualTo("length");
    }

    @Test
    void concurrentReadersThatDropAndResumeAtDifferentPointsEachGetEveryTokenExactlyOnce() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        String messageId = send(null, "Count to sixty").path("messageId").asText();
        StringBuilder expected = new StringBuilder();
        int readers = 6;
        var pool = java.util.concurrent.Executors.newFixedThreadPool(readers);
        try {
            List<java.util.concurrent.Future<String>> results = new ArrayList<>();
            for (int r = 0; r < readers; r++) {
                int dropAfter = 1 + r * 7; // each reader loses its connection at a different event
                results.add(pool.submit(() -> {
                    List<SseClient.Event> seen = new ArrayList<>();
                    try (SseClient client = browser.stream(messageId, cookie, null)) {
                        for (int i = 0; i < dropAfter; i++) {
                            seen.add(client.next());
                        }
                    }
                    seen.addAll(readAll(messageId, seen.get(seen.size() - 1).id()));
                    List<String> ids = seen.stream().map(SseClient.Event::id).toList();
                    for (int i = 0; i < ids.size(); i++) {
                        assertThat(ids.get(i)).isEqualTo(Integer.toString(i + 1));
                    }
                    return textOf(seen);
                }));
            }
            for (int i = 1; i <= 60; i++) {
                String token = " t" + i;
                expected.append(token);
                stream.token(token);
            }
            stream.finish("stop", 3, 60);
            for (var result : results) {
                assertThat(result.get(60, TimeUnit.SECONDS)).isEqualTo(expected.toString());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aReaderThatOpensMidStreamGetsEveryEventFromTheStartThenFollowsLive() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        stream.token("A").token("B");
        String messageId = send(null, "Letters").path("messageId").asText();
        try (SseClient client = browser.stream(messageId, cookie, null)) {
            assertThat(client.next().data()).contains("\"A\"");
            assertThat(client.next().data()).contains("\"B\"");
            stream.token("C").finish("stop", 1, 3);
            List<SseClient.Event> rest = client.drain();
            assertThat(textOf(rest)).isEqualTo("C");
            assertThat(rest.get(rest.size() - 1).name()).isEqualTo("finish");
        }
    }

    @Test
    void onlyTheOwningSessionMayOpenOrCancelAReply() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        JsonNode sent = send(null, "Private question");
        String messageId = sent.path("messageId").asText();

        String sameKeyOtherSession = browser.signIn(KEY);
        assertThat(browser.stream(messageId, sameKeyOtherSession, null).status()).isEqualTo(404);
        String conversationPath = "/api/chat/conversations/" + sent.path("conversationId").asText();
        // the same key sees the conversation, but only the sending session may follow the reply
        assertThat(json.readTree(browser.get(conversationPath, sameKeyOtherSession).body()).path("messages").get(1)
                .path("followable").asBoolean()).isFalse();
        assertThat(json.readTree(browser.get(conversationPath, cookie).body()).path("messages").get(1)
                .path("followable").asBoolean()).isTrue();
        assertThat(browser.post(cancelPath(messageId), "", sameKeyOtherSession).statusCode()).isEqualTo(404);

        String otherKey = keys.create(new ApiKeyService.KeyChanges("other", null, null, null, null)).plaintext();
        String otherKeySession = browser.signIn(otherKey);
        assertThat(browser.stream(messageId, otherKeySession, null).status()).isEqualTo(404);
        assertThat(browser.get("/api/chat/conversations/" + sent.path("conversationId").asText(), otherKeySession)
                .statusCode()).isEqualTo(404);
        assertThat(json.readTree(browser.get("/api/chat/conversations", otherKeySession).body()).path("conversations"))
                .isEmpty();

        stream.token("ok").finish("stop", 1, 1);
        assertThat(textOf(readAll(messageId, null))).isEqualTo("ok");
    }

    @Test
    void cancelStopsTheUpstreamAndKeepsThePartialAnswerMarkedStopped() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        stream.token("Once upon").token(" a time");
        JsonNode sent = send(null, "Tell a long story");
        String messageId = sent.path("messageId").asText();

        try (SseClient client = browser.stream(messageId, cookie, null)) {
            client.next();
            client.next();
            assertThat(browser.post(cancelPath(messageId), "", cookie).statusCode()).isEqualTo(204);
            List<SseClient.Event> rest = client.drain();
            assertThat(rest).extracting(SseClient.Event::name).containsExactly("finish");
            assertThat(json.readTree(rest.get(0).data()).path("finish_reason").asText()).isEqualTo("stopped");
        }
        // the gateway hung up on the model-service, so generation stops there
        assertThat(stream.closedByGateway.await(30, TimeUnit.SECONDS)).isTrue();

        JsonNode reply = json.readTree(browser.get("/api/chat/conversations/" + sent.path("conversationId").asText(), cookie)
                .body()).path("messages").get(1);
        assertThat(reply.path("status").asText()).isEqualTo("stopped");
        assertThat(reply.path("content").asText()).isEqualTo("Once upon a time");
        assertThat(browser.post(cancelPath(messageId), "", cookie).statusCode()).isEqualTo(204); // idempotent
        assertThat(browser.stream(messageId, cookie, "3").status()).isEqualTo(204);
    }

    @Test
    void earlierTurnsOfTheConversationGoToTheModel() throws Exception {
        upstream.nextStream().token("Paris.").finish("stop", 5, 1);
        JsonNode first = send(null, "Capital of France?");
        readAll(first.path("messageId").asText(), null);

        upstream.nextStream().token("About 2 million.").finish("stop", 9, 3);
        String conversationId = first.path("conversationId").asText();
        JsonNode second = send(conversationId, "And its population?");
        assertThat(second.path("conversationId").asText()).isEqualTo(conversationId);
        readAll(second.path("messageId").asText(), null);

        String lastBody;
        synchronized (upstream.chatBodies) {
            lastBody = upstream.chatBodies.get(upstream.chatBodies.size() - 1);
        }
        JsonNode messages = json.readTree(lastBody).path("messages");
        assertThat(messages).hasSize(3);
        assertThat(messages.get(0).path("content").asText()).isEqualTo("Capital of France?");
        assertThat(messages.get(1).path("role").asText()).isEqualTo("assistant");
        assertThat(messages.get(1).path("content").asText()).isEqualTo("Paris.");
        assertThat(messages.get(2).path("content").asText()).isEqualTo("And its population?");

        JsonNode list = json.readTree(browser.get("/api/chat/conversations", cookie).body()).path("conversations");
        assertThat(list.get(0).path("id").asText()).isEqualTo(conversationId);
        assertThat(list.get(0).path("title").asText()).isEqualTo("Capital of France?");

        HttpResponse<String> deleted = browser.delete("/api/chat/conversations/" + conversationId, cookie);
        assertThat(deleted.statusCode()).isEqualTo(204);
        assertThat(browser.get("/api/chat/conversations/" + conversationId, cookie).statusCode()).isEqualTo(404);
    }

    @Test
    void aQuestionWhoseReplyWasStoppedEmptyIsNotSentAgainAsContext() throws Exception {
        GatedUpstream.GatedStream silent = upstream.nextStream();
        JsonNode first = send(null, "Never mind");
        assertThat(silent.started.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(browser.post(cancelPath(first.path("messageId").asText()), "", cookie).statusCode()).isEqualTo(204);

        upstream.nextStream().token("Sure.").finish("stop", 3, 1);
        JsonNode second = send(first.path("conversationId").asText(), "Something else");
        assertThat(textOf(readAll(second.path("messageId").asText(), null))).isEqualTo("Sure.");
        String lastBody;
        synchronized (upstream.chatBodies) {
            lastBody = upstream.chatBodies.get(upstream.chatBodies.size() - 1);
        }
        JsonNode messages = json.readTree(lastBody).path("messages");
        assertThat(messages).hasSize(1);
        assertThat(messages.get(0).path("content").asText()).isEqualTo("Something else");
        JsonNode stored = json.readTree(browser.get("/api/chat/conversations/" + first.path("conversationId").asText(),
                cookie).body()).path("messages");
        assertThat(stored).extracting(m -> m.path("status").asText())
                .containsExactly("complete", "stopped", "complete", "complete");
    }

    @Test
    void messagesSentToOneConversationAtTheSameMomentGetOneReplyAndConflictsNeverA500() throws Exception {
        upstream.nextStream().token("first").finish("stop", 1, 1);
        JsonNode first = send(null, "Start");
        readAll(first.path("messageId").asText(), null);
        String body = json.createObjectNode().put("conversationId", first.path("conversationId").asText())
                .put("content", "Same moment").toString();
        int senders = 6;
        for (int i = 0; i < senders; i++) {
            upstream.nextStream().token("reply").finish("stop", 1, 1);
        }
        var pool = java.util.concurrent.Executors.newFixedThreadPool(senders);
        try {
            var start = new java.util.concurrent.CountDownLatch(1);
            List<java.util.concurrent.Future<HttpResponse<String>>> results = new ArrayList<>();
            for (int i = 0; i < senders; i++) {
                results.add(pool.submit(() -> {
                    start.await();
                    return browser.post("/api/chat/messages", body, cookie);
                }));
            }
            start.countDown();
            int accepted = 0;
            int conflicts = 0;
            for (var result : results) {
                HttpResponse<String> response = result.get(60, TimeUnit.SECONDS);
                assertThat(response.statusCode()).as(response.body()).isIn(200, 409);
                if (response.statusCode() == 200) {
                    accepted++;
                    readAll(json.readTree(response.body()).path("messageId").asText(), null);
                } else {
                    conflicts++;
                }
            }
            // how many of the six land depends on timing; what each answer says must be exactly what was stored
            assertThat(accepted + conflicts).isEqualTo(senders);
            assertThat(accepted).isPositive(); // the first of them to commit always lands
            JsonNode stored = json.readTree(browser.get("/api/chat/conversations/"
                    + first.path("conversationId").asText(), cookie).body()).path("messages");
            assertThat(stored).hasSize(2 + 2 * accepted);
            assertThat(stored).extracting(m -> m.path("role").asText() + ":" + m.path("status").asText())
                    .containsExactlyElementsOf(java.util.stream.IntStream.range(0, 2 + 2 * accepted)
                            .mapToObj(i -> i % 2 == 0 ? "user:complete" : "assistant:complete").toList());
        } finally {
            pool.shutdownNow();
            upstream.clearUnused();
        }
    }

    @Test
    void aKeyOverItsRequestLimitGets429WithRetryAfterAndNothingIsStored() throws Exception {
        String limited = keys.create(new ApiKeyService.KeyChanges("limited", 1, null, null, null)).plaintext();
        String session = browser.signIn(limited);
        upstream.nextStream().token("first").finish("stop", 1, 1);
        JsonNode first = json.readTree(browser.post("/api/chat/messages", "{\"content\":\"one\"}", session).body());
        readAll(first.path("messageId").asText(), null, session);

        HttpResponse<String> refused = browser.post("/api/chat/messages",
                "{\"conversationId\":\"" + first.path("conversationId").asText() + "\",\"content\":\"two\"}", session);
        assertThat(refused.statusCode()).isEqualTo(429);
        assertThat(refused.headers().firstValue("Retry-After")).isPresent();
        assertThat(refused.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");
        JsonNode stored = json.readTree(browser.get("/api/chat/conversations/" + first.path("conversationId").asText(),
                session).body());
        assertThat(stored.path("messages")).hasSize(2);
    }

    @Test
    void badInputGetsA4xxProblemDetail() throws Exception {
        HttpResponse<String> empty = browser.post("/api/chat/messages", "{\"content\":\"  \"}", cookie);
        assertThat(empty.statusCode()).isEqualTo(400);
        assertThat(empty.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");
        assertThat(browser.post("/api/chat/messages", "{\"conversationId\":\"nope\",\"content\":\"hi\"}", cookie).statusCode())
                .isEqualTo(404);
        assertThat(browser.post("/api/chat/messages", "[1,2]", cookie).statusCode()).isEqualTo(400);
        assertThat(browser.post("/api/chat/messages", "{\"conversationId\":{},\"content\":\"x\"}", cookie).statusCode())
                .isEqualTo(400);
        assertThat(browser.post("/api/chat/messages", json.createObjectNode().put("content", "x".repeat(32_001)).toString(),
                cookie).statusCode()).isEqualTo(400);
        assertThat(browser.post("/api/session", "{\"apiKey\":{}}", null).statusCode()).isEqualTo(400);
        assertThat(browser.post("/api/session", "{}", null).statusCode()).isEqualTo(400);
        assertThat(browser.stream("no-such-message", cookie, null).status()).isEqualTo(404);

        upstream.nextStream().token("x").finish("stop", 1, 1);
        String messageId = send(null, "hi").path("messageId").asText();
        assertThat(browser.stream(messageId, cookie, "abc").status()).isEqualTo(400);
        readAll(messageId, null);
    }

    // ---- helpers ------------------------------------------------------------------------

    private JsonNode send(String conversationId, String content) throws Exception {
        String body = conversationId == null
                ? json.createObjectNode().put("content", content).toString()
                : json.createObjectNode().put("conversationId", conversationId).put("content", content).toString();
        HttpResponse<String> response = browser.post("/api/chat/messages", body, cookie);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return json.readTree(response.body());
    }

    private List<SseClient.Event> readAll(String messageId, String lastEventId) throws Exception {
        return readAll(messageId, lastEventId, cookie);
    }

    private List<SseClient.Event> readAll(String messageId, String lastEventId, String sessionCookie) throws Exception {
        try (SseClient client = browser.stream(messageId, sessionCookie, lastEventId)) {
            assertThat(client.status()).isEqualTo(200);
            return client.drain();
        }
    }

    private static String cancelPath(String messageId) {
        return "/api/chat/messages/" + messageId + "/cancel";
    }
}
