package dev.llmrelay.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.context.ConfigurableApplicationContext;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * A word added while streams run is enforced in all of them, on this gateway and on a second one (a
 * second Spring application on the same database, as a second process would be): the second learns
 * of the change only by its policy poll. Asserts what the streams say after the change, not a time.
 */
class ContentFilterReloadTest extends GatewayTestSupport {

    private static final String ADMIN = "Bearer test-admin-token";
    private final ObjectMapper json = new ObjectMapper();

    private ConfigurableApplicationContext second;

    @AfterEach
    void stopSecond() throws IOException {
        admin(port, "DELETE", "/admin/content-filter/lists/reload", null);
        if (second != null) {
            second.close();
        }
    }

    private String admin(int onPort, String method, String path, String body) throws IOException {
        Request request = new Request.Builder().url("http://127.0.0.1:" + onPort + path).header("Authorization", ADMIN)
                .method(method, body == null ? null : RequestBody.create(body, JSON)).build();
        try (Response response = client.newCall(request).execute()) {
            return response.body().string();
        }
    }

    private long policyVersion(int onPort) throws IOException {
        return json.readTree(admin(onPort, "GET", "/admin/policy", null)).path("version").asLong();
    }

    private String streamedText(int onPort, String key, String requestId) throws IOException {
        Request request = new Request.Builder().url("http://127.0.0.1:" + onPort + "/v1/chat/completions")
                .header("Authorization", "Bearer " + key).header("X-Request-Id", requestId)
                .post(RequestBody.create(chatBody(true, null), JSON)).build();
        try (Response response = client.newCall(request).execute()) {
            StringBuilder text = new StringBuilder();
            for (String event : dataEvents(lines(response))) {
                if (!event.equals("[DONE]")) {
                    JsonNode chunk = json.readTree(event);
                    text.append(chunk.path("choices").path(0).path("delta").path("content").asText(""));
                }
            }
            return text.toString();
        }
    }

    @Test
    void aWordAddedWhileTenStreamsRunIsEnforcedInAllOfThemOnBothGateways() throws Exception {
        second = startSecondGateway();
        int secondPort = second.getEnvironment().getProperty("local.server.port", Integer.class);
        // a list whose one word is one char: nothing is held back before the change
        admin(port, "PUT", "/admin/content-filter/lists/reload", "{\"action\":\"mask\",\"words\":[\"☃\"]}");
        awaitTrue("the second gateway loaded the list",
                () -> uncheckedVersion(secondPort) == uncheckedVersion(port));

        CountDownLatch allStarted = new CountDownLatch(10);
        CountDownLatch changed = new CountDownLatch(1);
        java.util.function.Function<mockwebserver3.RecordedRequest, MockResponse> answer = r -> new SseScript()
                .event(SseScript.chunk("rl", "before newword, ", null))
                .countDownAndAwait(allStarted)
                .await(changed)
                .event(SseScript.chunk("rl", "after new", null))
                .event(SseScript.chunk("rl", "WORD.", null))
                .event(SseScript.chunk("rl", null, "stop")).done().response();
        UPSTREAM_A.answer(answer);
        UPSTREAM_B.answer(answer);

        String key = newKey();
        ExecutorService clients = Executors.newFixedThreadPool(10);
        try {
            List<Future<String>> streams = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                int onPort = i % 2 == 0 ? port : secondPort;
                String requestId = "reload-" + i;
                streams.add(clients.submit(() -> streamedText(onPort, key, requestId)));
            }
            assertThat(allStarted.await(30, TimeUnit.SECONDS)).isTrue();

            long before = System.nanoTime();
            admin(port, "POST", "/admin/content-filter/lists/reload/entries", "{\"words\":[\"newword\"]}");
            long changedVersion = policyVersion(port);
            awaitTrue("the second gateway polled the change", () -> uncheckedVersion(secondPort) == changedVersion);
            System.out.printf("content filter reload: second gateway serves version %d %.0f ms after the admin "
                    + "answer (poll interval 250 ms)%n", changedVersion, (System.nanoTime() - before) / 1e6);
            changed.countDown();

            for (Future<String> stream : streams) {
                assertThat(stream.get(30, TimeUnit.SECONDS)).isEqualTo("before newword, after *******.");
            }
        } finally {
            clients.shutdownNow();
        }
    }

    private long uncheckedVersion(int onPort) {
        try {
            return policyVersion(onPort);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
