package dev.llmrelay.gateway.conversation;

import static dev.llmrelay.gateway.conversation.SseClient.textOf;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.boot.web.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.GatewayApplication;
import dev.llmrelay.gateway.support.RedisServer;

/**
 * Two real gateways (A: the test's context, B: a second application in the same JVM) sharing one
 * database and one real redis-server (limits store {@code redis}), in front of one gated upstream:
 * a reply generated on A is followed, resumed and stopped through B.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
@DirtiesContext // its Redis stops after this class
class CrossInstanceRepliesTest {

    private static final String KEY = "sk-cross-instance-test-key";
    private static final String DB = "jdbc:h2:mem:cross-instance;DB_CLOSE_DELAY=-1";
    private static final GatedUpstream upstream;

    static {
        try {
            upstream = new GatedUpstream();
        } catch (IOException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @RegisterExtension
    static final RedisServer REDIS = new RedisServer();

    private static ConfigurableApplicationContext instanceB;
    private static int portB;

    private static Map<String, Object> shared() {
        return Map.of("gateway.upstreams", upstream.url(), "gateway.bootstrap-key", KEY, "gateway.web-dir", "",
                "server.shutdown", "immediate", "spring.datasource.url", DB, "gateway.limits.store", "redis",
                "gateway.redis.url", REDIS.url(), "gateway.timeouts.heartbeat", "200ms");
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        shared().forEach((name, value) -> registry.add(name, () -> value));
    }

    @BeforeAll
    static void startInstanceB() {
        // as command-line arguments: default properties would lose to application.yml's own defaults
        List<String> args = new ArrayList<>();
        shared().forEach((name, value) -> args.add("--" + name + "=" + value));
        args.add("--server.port=0");
        instanceB = new SpringApplicationBuilder(GatewayApplication.class).run(args.toArray(String[]::new));
        portB = ((WebServerApplicationContext) instanceB).getWebServer().getPort();
    }

    @AfterAll
    static void stopAll() {
        if (instanceB != null) {
            instanceB.close();
        }
        upstream.close();
    }

    @LocalServerPort
    int portA;

    private final ObjectMapper json = new ObjectMapper();
    private BrowserHttp onA;
    private BrowserHttp onB;
    private String cookie;

    @BeforeEach
    void signIn() throws Exception {
        onA = new BrowserHttp(portA);
        onB = new BrowserHttp(portB);
        cookie = onA.signIn(KEY);
    }

    @Test
    void aReplySentOnAIsFollowedAndResumedOnBWithTheSameEventIds() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        JsonNode sent = send(null, "Count to three");
        String messageId = sent.path("messageId").asText();
        String conversationId = sent.path("conversationId").asText();

        // B follows before A has logged any event: it waits for them live
        List<SseClient.Event> first = new ArrayList<>();
        try (SseClient client = onB.stream(messageId, cookie, null)) {
            assertThat(client.status()).isEqualTo(200);
            stream.token("One").token(", two");
            first.add(client.next());
            first.add(client.next());
            // B shows the text so far and refuses a second send while A still generates
            JsonNode shown = json.readTree(onB.get("/api/chat/conversations/" + conversationId, cookie).body());
            assertThat(shown.path("messages").get(1).path("content").asText()).isEqualTo("One, two");
            HttpResponse<String> second = onB.post("/api/chat/messages", json.createObjectNode()
                    .put("conversationId", conversationId).put("content", "again").toString(), cookie);
            assertThat(second.statusCode()).isEqualTo(409);
        } // the browser drops here
        assertThat(first).extracting(SseClient.Event::id).containsExactly("1", "2");

        stream.token(", three").finish("stop", 4, 3);
        List<SseClient.Event> rest = readAll(onB, messageId, "2");
        assertThat(rest).extracting(SseClient.Event::id).containsExactly("3", "4");
        assertThat(rest).extracting(SseClient.Event::name).containsExactly("token", "finish");
        List<SseClient.Event> all = new ArrayList<>(first);
        all.addAll(rest);
        assertThat(textOf(all)).isEqualTo("One, two, three");

        // a reload on B right after the end replays the whole reply once; past its end there is nothing
        List<SseClient.Event> replay = readAll(onB, messageId, null);
        assertThat(replay).extracting(SseClient.Event::id).containsExactly("1", "2", "3", "4");
        assertThat(textOf(replay)).isEqualTo("One, two, three");
        assertThat(onB.stream(messageId, cookie, "4").status()).isEqualTo(204);
    }

    @Test
    void cancelOnBStopsTheUpstreamOfTheReplyGeneratedOnA() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        stream.token("Once upon");
        String messageId = send(null, "Tell a long story").path("messageId").asText();

        try (SseClient client = onB.stream(messageId, cookie, null)) {
            assertThat(client.next().name()).isEqualTo("token");
            assertThat(onB.post("/api/chat/messages/" + messageId + "/cancel", "", cookie).statusCode()).isEqualTo(204);
            List<SseClient.Event> rest = client.drain();
            assertThat(rest).extracting(SseClient.Event::name).containsExactly("finish");
            assertThat(json.readTree(rest.get(0).data()).path("finish_reason").asText()).isEqualTo("stopped");
        }
        // A hung up on the model-service
        assertThat(stream.closedByGateway.await(30, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void redisDownAnswers503ProblemOnBNever500() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        String messageId = send(null, "Wait for it").path("messageId").asText();
        REDIS.stop();
        try {
            try (SseClient client = onB.stream(messageId, cookie, null)) {
                assertThat(client.status()).isEqualTo(503);
                assertThat(client.response.headers().firstValue("Content-Type").orElse(""))
                        .startsWith("application/problem+json");
            }
            HttpResponse<String> cancel = onB.post("/api/chat/messages/" + messageId + "/cancel", "", cookie);
            assertThat(cancel.statusCode()).isEqualTo(503);
            assertThat(json.readTree(cancel.body()).path("code").asText()).isEqualTo("replies_unavailable");
        } finally {
            REDIS.start();
        }
        // A still serves and stops its own reply
        assertThat(onA.post("/api/chat/messages/" + messageId + "/cancel", "", cookie).statusCode()).isEqualTo(204);
        assertThat(stream.closedByGateway.await(30, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void eventsLoggedWhileRedisIsDownReachTheSharedStreamInOrderOnceItIsBack() throws Exception {
        GatedUpstream.GatedStream stream = upstream.nextStream();
        String messageId = send(null, "Count through an outage").path("messageId").asText();
        stream.token("One");
        try (SseClient followed = onB.stream(messageId, cookie, null)) {
            assertThat(followed.next().id()).isEqualTo("1"); // event 1 is in Redis
        }
        REDIS.stop(); // comes back empty: a restarted Redis without persistence
        try {
            stream.token(", two");
            try (SseClient own = onA.stream(messageId, cookie, "1")) {
                assertThat(own.next().id()).isEqualTo("2"); // A logged event 2 while Redis was down
            }
        } finally {
            REDIS.start();
        }
        stream.token(", three").finish("stop", 4, 3);

        // B replays the whole reply from Redis once A has caught up: every event once, in order
        List<SseClient.Event> replay = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            try (SseClient followed = onB.stream(messageId, cookie, null)) {
                if (followed.status() == 200) {
                    List<SseClient.Event> events = followed.drain();
                    if (!events.isEmpty() && events.get(events.size() - 1).name().equals("finish")) {
                        replay = events;
                        break;
                    }
                }
            }
            Thread.sleep(200);
        }
        assertThat(replay).as("B never saw the reply's end").isNotNull();
        assertThat(replay).extracting(SseClient.Event::id).containsExactly("1", "2", "3", "4");
        assertThat(textOf(replay)).isEqualTo("One, two, three");
    }

    // ---- helpers ------------------------------------------------------------------------

    private JsonNode send(String conversationId, String content) throws Exception {
        HttpResponse<String> response = onA.post("/api/chat/messages",
                json.createObjectNode().put("conversationId", conversationId).put("content", content).toString(), cookie);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return json.readTree(response.body());
    }

    private List<SseClient.Event> readAll(BrowserHttp instance, String messageId, String lastEventId) throws Exception {
        try (SseClient client = instance.stream(messageId, cookie, lastEventId)) {
            assertThat(client.status()).isEqualTo(200);
            return client.drain();
        }
    }
}
