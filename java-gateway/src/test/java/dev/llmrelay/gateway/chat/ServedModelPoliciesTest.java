package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.conversation.BrowserHttp;
import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.SseScript;
import dev.llmrelay.gateway.upstream.ModelListings;
import dev.llmrelay.gateway.upstream.UpstreamModels;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import okhttp3.Response;

/**
 * A request that names no model goes to the default pool and is served by the model that pool's replicas
 * serve: that model's policies (system prompt, pause) apply to it exactly as to a request naming the model.
 * Each test has a gateway and an upstream of its own ({@link FreshGateway}).
 */
class ServedModelPoliciesTest {

    private static final String MODEL = "smollm2-135m-instruct";

    private final ObjectMapper mapper = new ObjectMapper();
    private FreshGateway gateway;

    @BeforeEach
    void startGateway() {
        gateway = FreshGateway.start();
        // what the probe learns from the replica's /v1/models: the default pool serves MODEL
        ModelListings.listEverywhere(gateway.bean(UpstreamModels.class), gateway.bean(UpstreamPool.class), MODEL,
                8192);
        gateway.upstream().answer(r -> switch (r.getUrl().encodedPath()) {
            case "/v1/chat/completions" -> SseScript.answer("r", 7, "I", " am", " Relay").response();
            case "/v1/completions" -> new SseScript().event(TextCompletionsApiTest.textChunk("t", " Relay", "stop"))
                    .event(TextCompletionsApiTest.textUsage("t", 5, 1)).done().response();
            default -> new MockResponse.Builder().code(404).build();
        });
    }

    @AfterEach
    void stopGateway() {
        gateway.close();
    }



    private static String chat(String model) {
        return "{" + (model == null ? "" : "\"model\":\"" + model + "\",")
                + "\"messages\":[{\"role\":\"user\",\"content\":\"Who are you?\"}]}";
    }

    private static String completion(String model) {
        return "{" + (model == null ? "" : "\"model\":\"" + model + "\",") + "\"prompt\":\"Who are you?\"}";
    }

    private List<JsonNode> upstreamBodies(String path) throws Exception {
        List<JsonNode> bodies = new java.util.ArrayList<>();
        for (RecordedRequest request : gateway.upstream().requests()) {
            if (request.getUrl().encodedPath().equals(path)) {
                bodies.add(mapper.readTree(request.getBody().utf8()));
            }
        }
        return bodies;
    }

    @Test
    void theServedModelsSystemPromptReachesTheUpstreamWhetherOrNotTheRequestNamesTheModel() throws Exception {
        try (Response put = gateway.admin("PUT", "/admin/system-prompts/models/" + MODEL,
                "{\"prompt\":\"You are Relay, serving {model}.\"}")) {
            assertThat(put.code()).isEqualTo(200);
        }
        String key = gateway.newKey();
        for (String model : new String[] {MODEL, null}) {
            try (Response response = gateway.post("/v1/chat/completions", key, chat(model))) {
                assertThat(response.code()).as("model " + model).isEqualTo(200);
                assertThat(mapper.readTree(response.body().string()).path("choices").path(0).path("message")
                        .path("content").asText()).isEqualTo("I am Relay");
            }
        }
        List<JsonNode> sent = upstreamBodies("/v1/chat/completions");
        assertThat(sent).hasSize(2);
        String expected = "[{\"role\":\"system\",\"content\":\"You are Relay, serving " + MODEL + ".\"},"
                + "{\"role\":\"user\",\"content\":\"Who are you?\"}]";
        assertThat(sent.get(0).path("messages")).as("naming the model").isEqualTo(mapper.readTree(expected));
        assertThat(sent.get(1).path("messages")).as("naming no model").isEqualTo(mapper.readTree(expected));
    }

    @Test
    void aPausedModelRefusesRequestsThatNameNoModelExactlyAsThoseThatNameIt() throws Exception {
        try (Response patch = gateway.admin("PATCH", "/admin/degradation",
                "{\"pausedModels\":{\"" + MODEL + "\":\"Paused for maintenance.\"}}")) {
            assertThat(patch.code()).isEqualTo(200);
        }
        String key = gateway.newKey();
        String expected = "{\"error\":{\"message\":\"Paused for maintenance.\",\"type\":\"server_error\","
                + "\"param\":null,\"code\":\"model_paused\"}}";
        for (String model : new String[] {MODEL, null}) {
            try (Response response = gateway.post("/v1/chat/completions", key, chat(model))) {
                assertThat(response.code()).as("chat, model " + model).isEqualTo(503);
                assertThat(mapper.readTree(response.body().string())).as("chat, model " + model)
                        .isEqualTo(mapper.readTree(expected));
            }
            try (Response response = gateway.post("/v1/completions", key, completion(model))) {
                assertThat(response.code()).as("completions, model " + model).isEqualTo(503);
                assertThat(mapper.readTree(response.body().string())).as("completions, model " + model)
                        .isEqualTo(mapper.readTree(expected));
            }
        }
        assertThat(gateway.upstream().requests()).isEmpty();
    }

    @Test
    void aPausedModelsRefusalsSpendNoneOfTheKeysBudgetAndEachWritesOneDegradedRow() throws Exception {
        try (Response patch = gateway.admin("PATCH", "/admin/degradation",
                "{\"pausedModels\":{\"" + MODEL + "\":\"Paused.\"}}")) {
            assertThat(patch.code()).isEqualTo(200);
        }
        String key = gateway.newKey(2, 1_000_000, 5); // two requests a minute
        for (int i = 0; i < 3; i++) {
            try (Response response = gateway.post("/v1/chat/completions", key, chat(null))) {
                assertThat(response.code()).as("request " + i).isEqualTo(503); // the pause, never 429
            }
        }
        try (Response patch = gateway.admin("PATCH", "/admin/degradation",
                "{\"pausedModels\":{\"" + MODEL + "\":null}}")) {
            assertThat(patch.code()).isEqualTo(200);
        }
        try (Response served = gateway.post("/v1/chat/completions", key, chat(null))) {
            assertThat(served.code()).isEqualTo(200);
            assertThat(served.header("X-RateLimit-Remaining")).isEqualTo("1");
        }
        gateway.bean(dev.llmrelay.gateway.usage.UsageRecorder.class).flush();
        var jdbc = gateway.bean(org.springframework.jdbc.core.simple.JdbcClient.class);
        assertThat(jdbc.sql("SELECT end_reason, model, http_status FROM usage_record ORDER BY id").query()
                .listOfRows().stream().map(r -> r.get("END_REASON") + " " + r.get("MODEL") + " " + r.get("HTTP_STATUS"))
                .toList()).containsExactly("degraded " + MODEL + " 503", "degraded " + MODEL + " 503",
                        "degraded " + MODEL + " 503", "stop " + MODEL + " 200");
    }

    @Test
    void theBrowserApiWhichNamesNoModelGetsTheServedModelsSystemPromptAndPause() throws Exception {
        try (Response put = gateway.admin("PUT", "/admin/system-prompts/models/" + MODEL,
                "{\"prompt\":\"You are Relay, serving {model}.\"}")) {
            assertThat(put.code()).isEqualTo(200);
        }
        BrowserHttp browser = new BrowserHttp(gateway.port());
        String cookie = browser.signIn(gateway.newKey());
        var sent = browser.post("/api/chat/messages", "{\"content\":\"Who are you?\"}", cookie);
        assertThat(sent.statusCode()).as(sent.body()).isEqualTo(200);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (upstreamBodies("/v1/chat/completions").isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        List<JsonNode> bodies = upstreamBodies("/v1/chat/completions");
        assertThat(bodies).hasSize(1);
        assertThat(bodies.get(0).path("messages")).isEqualTo(mapper.readTree(
                "[{\"role\":\"system\",\"content\":\"You are Relay, serving " + MODEL + ".\"},"
                        + "{\"role\":\"user\",\"content\":\"Who are you?\"}]"));

        try (Response patch = gateway.admin("PATCH", "/admin/degradation",
                "{\"pausedModels\":{\"" + MODEL + "\":\"Paused for maintenance.\"}}")) {
            assertThat(patch.code()).isEqualTo(200);
        }
        var paused = browser.post("/api/chat/messages", "{\"content\":\"Still there?\"}", cookie);
        assertThat(paused.statusCode()).as(paused.body()).isEqualTo(503);
        JsonNode problem = mapper.readTree(paused.body());
        assertThat(problem.path("detail").asText()).isEqualTo("Paused for maintenance.");
        assertThat(problem.path("code").asText()).isEqualTo("model_paused");
        assertThat(upstreamBodies("/v1/chat/completions")).hasSize(1);
    }
}
