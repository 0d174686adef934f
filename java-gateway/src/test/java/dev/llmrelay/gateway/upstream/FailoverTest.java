package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.jdbc.core.simple.JdbcClient;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.ScriptedUpstream;
import dev.llmrelay.gateway.support.SseScript;
import dev.llmrelay.gateway.usage.UsageRecorder;
import mockwebserver3.MockResponse;
import okhttp3.Response;

/**
 * A replica that answers 503 before any event: the request is retried on the next replica, and the busy
 * one (its Retry-After) is passed over until then. Each test has a gateway and two scripted upstreams of its
 * own ({@link FreshGateway}), so the counts are exact.
 */
class FailoverTest {

    @RegisterExtension
    final FreshGateway.PerTest gateway = FreshGateway.perTest(2);

    private static MockResponse overloaded() {
        return new MockResponse.Builder().code(503).setHeader("Content-Type", "application/json")
                .setHeader("Retry-After", "7")
                .body("{\"error\":{\"message\":\"queue full\",\"type\":\"server_error\",\"param\":null,"
                        + "\"code\":\"overloaded\"}}")
                .build();
    }

    private static String chat(boolean stream) {
        return "{\"model\":\"smollm2\",\"stream\":" + stream + ",\"messages\":[{\"role\":\"user\",\"content\":"
                + "\"Hello there\"}]}";
    }

    private Map<String, Object> usageRow(String requestId) {
        gateway.get().bean(UsageRecorder.class).flush();
        return gateway.get().bean(JdbcClient.class).sql("SELECT * FROM usage_record WHERE request_id = ?")
                .param(requestId).query().singleRow();
    }

    @Test
    void a503BeforeAnyEventIsRetriedOnTheOtherReplicaWhichThenTakesTheRest() throws Exception {
        ScriptedUpstream busy = gateway.get().upstream(0);
        ScriptedUpstream serving = gateway.get().upstream(1);
        busy.answer(r -> overloaded());
        serving.answer(r -> SseScript.answer("f1", 5, "ok").response());
        String key = gateway.get().newKey();
        for (int i = 0; i < 3; i++) {
            try (Response response = gateway.get().post("/v1/chat/completions", key, chat(true))) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(response.body().string()).isEqualTo("data: " + SseScript.chunk("f1", "ok", null)
                        + "\n\ndata: " + SseScript.chunk("f1", null, "stop") + "\n\ndata: [DONE]\n\n");
            }
        }
        // the first request starts on the first replica; its 503 Retry-After keeps the next two away from it
        assertThat(busy.chatRequests()).isEqualTo(1);
        assertThat(serving.chatRequests()).isEqualTo(3);
    }

    @Test
    void aNonStreamRequestFailsOverTooAndItsUsageRowIsTheServingReplicas() throws Exception {
        ScriptedUpstream busy = gateway.get().upstream(0);
        ScriptedUpstream serving = gateway.get().upstream(1);
        busy.answer(r -> overloaded());
        serving.answer(r -> SseScript.answer("x", 9, "Paris").response());
        String key = gateway.get().newKey();
        for (int i = 0; i < 2; i++) {
            try (Response response = client(key, "nonstream-" + i)) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(response.body().string()).contains("\"content\":\"Paris\"");
            }
            Map<String, Object> row = usageRow("nonstream-" + i);
            assertThat(row.get("END_REASON")).isEqualTo("stop");
            assertThat(row.get("PROMPT_TOKENS")).isEqualTo(9);
            assertThat(row.get("STREAMED")).isEqualTo(false);
            assertThat(row.get("UPSTREAM")).isEqualTo(serving.baseUrl());
        }
        assertThat(busy.chatRequests()).isEqualTo(1);
        assertThat(serving.chatRequests()).isEqualTo(2);
    }

    private Response client(String key, String requestId) throws java.io.IOException {
        return new okhttp3.OkHttpClient().newCall(new okhttp3.Request.Builder()
                .url(gateway.get().url("/v1/chat/completions")).header("Authorization", "Bearer " + key)
                .header("X-Request-Id", requestId)
                .post(okhttp3.RequestBody.create(chat(false), okhttp3.MediaType.get("application/json"))).build())
                .execute();
    }
}
