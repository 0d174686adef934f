package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.keys.ApiKeyService;
import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import dev.llmrelay.gateway.support.ScriptedUpstream;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * Upstreams grouped by model ({@code model=url} in GATEWAY_UPSTREAMS): each model's requests go to its
 * pool. A gateway of its own (GatewayTestSupport's context names its upstreams ungrouped), in front of two
 * scripted upstreams, one per model.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
        "spring.datasource.url=jdbc:h2:mem:model-pools;DB_CLOSE_DELAY=-1",
        "gateway.web-dir=",
        "gateway.health.interval=0",
        "gateway.routing.scrape-interval=0",
        "gateway.timeouts.read=20s"})
class ModelPoolsTest {

    private static final String QWEN = "Qwen/Qwen2.5-0.5B-Instruct";
    private static final ScriptedUpstream SMOLLM = new ScriptedUpstream();
    private static final ScriptedUpstream QWEN_REPLICA = new ScriptedUpstream();
    private static final MediaType JSON = MediaType.get("application/json");

    @DynamicPropertySource
    static void upstreams(DynamicPropertyRegistry registry) {
        registry.add("gateway.upstreams", () -> "smollm2=" + SMOLLM.baseUrl() + "," + QWEN + "=" + QWEN_REPLICA.baseUrl());
    }

    @LocalServerPort
    int port;
    @Autowired
    ApiKeyService keys;
    @Autowired
    UpstreamPool pool;
    @Autowired
    JdbcClient jdbc;
    @Autowired
    dev.llmrelay.gateway.usage.UsageRecorder usageRecorder;

    private final OkHttpClient client = new OkHttpClient.Builder().readTimeout(30, TimeUnit.SECONDS).build();
    private final ObjectMapper json = new ObjectMapper();

    private String newKey() {
        return keys.create(new KeyChanges("pools", 1000, 1_000_000, 100, null)).plaintext();
    }

    private Response chat(String key, String model, String requestId) throws Exception {
        String body = "{\"model\":\"" + model + "\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
        return client.newCall(new Request.Builder().url("http://127.0.0.1:" + port + "/v1/chat/completions")
                .header("Authorization", "Bearer " + key).header("X-Request-Id", requestId)
                .post(RequestBody.create(body, JSON)).build()).execute();
    }

    private Response models() throws Exception {
        return client.newCall(new Request.Builder().url("http://127.0.0.1:" + port + "/v1/models")
                .header("Authorization", "Bearer " + newKey()).build()).execute();
    }

    private static void serves(ScriptedUpstream upstream, String model) {
        upstream.answer(r -> switch (r.getUrl().encodedPath()) {
            case "/v1/models" -> new MockResponse.Builder().body("{\"object\":\"list\",\"data\":[{\"id\":\"" + model
                    + "\",\"object\":\"model\",\"max_model_len\":8192}]}").build();
            case "/v1/chat/completions" -> SseScript.answer("r", 2, "fine").response();
            default -> new MockResponse.Builder().code(404).build();
        });
    }

    @Test
    void eachModelGoesToItsPoolAndAnUnknownModelIs404() throws Exception {
        assertThat(pool.upstreams()).extracting(Upstream::model).containsExactly("smollm2", QWEN);
        serves(SMOLLM, "smollm2");
        serves(QWEN_REPLICA, QWEN);
        String key = newKey();
        for (int i = 0; i < 3; i++) {
            for (String model : new String[] {"smollm2", QWEN}) {
                try (Response response = chat(key, model, "pool-" + i + "-" + model)) {
                    assertThat(response.code()).isEqualTo(200);
                    assertThat(response.body().string()).contains("data: [DONE]");
                }
            }
        }
        assertThat(SMOLLM.chatRequests()).isEqualTo(3);
        assertThat(QWEN_REPLICA.chatRequests()).isEqualTo(3);

        try (Response response = chat(key, "gpt-4o", "pool-unknown")) {
            assertThat(response.code()).isEqualTo(404);
            JsonNode error = json.readTree(response.body().string()).path("error");
            assertThat(error.path("code").asText()).isEqualTo("model_not_found");
            assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
            assertThat(error.path("param").asText()).isEqualTo("model");
            assertThat(error.path("message").asText()).contains("gpt-4o");
        }
        assertThat(SMOLLM.chatRequests() + QWEN_REPLICA.chatRequests()).isEqualTo(6);
        // refused before any limit or upstream: its usage row says so
        usageRecorder.flush();
        List<Integer> statuses = jdbc.sql("SELECT http_status FROM usage_record WHERE request_id = 'pool-unknown'")
                .query(Integer.class).list();
        assertThat(statuses).containsExactly(404);
    }

    @Test
    void modelListIsTheUnionOfThePools() throws Exception {
        serves(SMOLLM, "smollm2");
        serves(QWEN_REPLICA, QWEN);
        try (Response response = models()) {
            assertThat(response.code()).isEqualTo(200);
            JsonNode list = json.readTree(response.body().string());
            assertThat(list.path("object").asText()).isEqualTo("list");
            assertThat(list.path("data").findValuesAsText("id")).containsExactlyInAnyOrder("smollm2", QWEN);
        }
        // one pool down: the list has the other's models
        QWEN_REPLICA.answer(r -> new MockResponse.Builder().code(500).body("{\"error\":{\"message\":\"boom\"}}").build());
        try (Response response = models()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(json.readTree(response.body().string()).path("data").findValuesAsText("id"))
                    .containsExactly("smollm2");
        }
    }
}
