package dev.llmrelay.gateway.conversation;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.ServerSocket;
import java.net.http.HttpResponse;

import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** The browser API when no model-service can serve: a clear 503 with Retry-After, nothing stored. */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class BrowserApiWithoutUpstreamTest {

    private static final String KEY = "sk-browser-no-upstream";

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) throws Exception {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0)) {
            closedPort = socket.getLocalPort(); // nothing listens here once the socket is closed
        }
        String deadUpstream = "http://127.0.0.1:" + closedPort;
        registry.add("gateway.upstreams", () -> deadUpstream);
        registry.add("gateway.health.interval", () -> "200ms");
        registry.add("gateway.bootstrap-key", () -> KEY);
        registry.add("gateway.web-dir", () -> "");
        // Tomcat's count of async requests in progress sometimes stays above zero after event-stream
        // clients drop mid-stream, and a graceful shutdown then waits its full 30 s at JVM exit.
        registry.add("server.shutdown", () -> "immediate");
        registry.add("spring.datasource.url", () -> "jdbc:h2:mem:browser-no-upstream;DB_CLOSE_DELAY=-1");
    }

    @LocalServerPort
    int port;

    private final ObjectMapper json = new ObjectMapper();

    @Test
    void sendingWhileNoUpstreamIsHealthyAnswers503ProblemWithRetryAfterAndStoresNothing() throws Exception {
        BrowserHttp browser = new BrowserHttp(port);
        String cookie = browser.signIn(KEY);

        // Until the first health probe has failed, a message may still be accepted and then fail on
        // its stream; once the upstream is known to be down, the POST itself is refused.
        HttpResponse<String> refused = null;
        for (int attempt = 0; attempt < 200 && refused == null; attempt++) {
            HttpResponse<String> response = browser.post("/api/chat/messages", "{\"content\":\"hello?\"}", cookie);
            if (response.statusCode() == 503) {
                refused = response;
            } else {
                assertThat(response.statusCode()).isEqualTo(200);
                Thread.sleep(100);
            }
        }
        assertThat(refused).as("POST refused with 503 once the upstream is known to be down").isNotNull();
        assertThat(refused.headers().firstValue("Content-Type").orElse("")).startsWith("application/problem+json");
        assertThat(refused.headers().firstValue("Retry-After")).isPresent();
        JsonNode problem = json.readTree(refused.body());
        assertThat(problem.path("status").asInt()).isEqualTo(503);
        assertThat(problem.path("code").asText()).isEqualTo("upstream_unavailable");

        for (JsonNode conversation : json.readTree(browser.get("/api/chat/conversations", cookie).body()).path("conversations")) {
            JsonNode messages = json.readTree(browser.get("/api/chat/conversations/" + conversation.path("id").asText(),
                    cookie).body()).path("messages");
            // only messages accepted before the probe noticed; each of them ended as an error
            assertThat(messages.get(messages.size() - 1).path("status").asText()).isIn("error", "streaming");
        }
    }
}
