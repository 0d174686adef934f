package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

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
 * POST /v1/completions (legacy text completions) through the gateway, against scripted upstreams: the same
 * keys, limits, failover, relay and usage rows as chat, with text_completion chunks.
 */
class TextCompletionsApiTest extends GatewayTestSupport {

    private final ObjectMapper mapper = new ObjectMapper();

    static String textChunk(String id, String text, String finishReason) {
        return "{\"id\":\"" + id + "\",\"object\":\"text_completion\",\"created\":1,\"model\":\"smollm2\","
                + "\"choices\":[{\"index\":0,\"text\":\"" + text + "\",\"logprobs\":null,\"finish_reason\":"
                + (finishReason == null ? "null" : "\"" + finishReason + "\"") + "}],\"usage\":null}";
    }

    static String textUsage(String id, int prompt, int completion) {
        return "{\"id\":\"" + id + "\",\"object\":\"text_completion\",\"created\":1,\"model\":\"smollm2\","
                + "\"choices\":[],\"usage\":{\"prompt_tokens\":" + prompt + ",\"completion_tokens\":" + completion
                + ",\"total_tokens\":" + (prompt + completion) + "}}";
    }

    /** " Paris", "." then finish_reason stop, usage, [DONE]: as the model-service streams a text completion. */
    static SseScript paris(String id) {
        return new SseScript().event(textChunk(id, " Paris", null)).event(textChunk(id, ".", "stop"))
                .event(textUsage(id, 5, 2)).done();
    }

    private void bothUpstreams(SseScript script) {
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());
    }

    private Request.Builder completion(String key, String body, String requestId) {
        return new Request.Builder().url(url("/v1/completions")).post(RequestBody.create(body, JSON))
                .header("Authorization", "Bearer " + key).header("X-Request-Id", requestId);
    }

    private static RecordedRequest onlyRequest() {
        List<RecordedRequest> requests = UPSTREAM_A.requests().isEmpty() ? UPSTREAM_B.requests()
                : UPSTREAM_A.requests();
        assertThat(requests).hasSize(1);
        return requests.get(0);
    }

    @Test
    void streamIsRelayedFromTheUpstreamCompletionsPathAndItsUsageRecorded() throws Exception {
        bothUpstreams(paris("s1"));
        String body = "{\"model\":\"smollm2\",\"prompt\":\"The capital of France is\",\"stream\":true,"
                + "\"max_tokens\":8}";
        try (Response response = client.newCall(completion(newKey(), body, "text-stream").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("Content-Type")).startsWith("text/event-stream");
            assertThat(response.header("X-RateLimit-Limit")).isEqualTo("1000");
            // the usage chunk the client did not ask for stays with the gateway
            assertThat(dataEvents(lines(response))).containsExactly(textChunk("s1", " Paris", null),
                    textChunk("s1", ".", "stop"), "[DONE]");
        }
        RecordedRequest sent = onlyRequest();
        assertThat(sent.getUrl().encodedPath()).isEqualTo("/v1/completions");
        JsonNode upstreamBody = mapper.readTree(sent.getBody().utf8());
        assertThat(upstreamBody.path("prompt").asText()).isEqualTo("The capital of France is");
        assertThat(upstreamBody.path("stream_options").path("include_usage").asBoolean()).isTrue();
        Map<String, Object> row = usageRow("text-stream");
        assertThat(row.get("ENDPOINT")).isEqualTo("completions");
        assertThat(row.get("STREAMED")).isEqualTo(true);
        assertThat(row.get("END_REASON")).isEqualTo("stop");
        assertThat(row.get("PROMPT_TOKENS")).isEqualTo(5);
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(2);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("reported");
    }

    @Test
    void clientThatAskedForUsageGetsTheUsageChunk() throws Exception {
        bothUpstreams(paris("s2"));
        String body = "{\"prompt\":\"The capital of France is\",\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}";
        try (Response response = client.newCall(completion(newKey(), body, "text-usage").build()).execute()) {
            assertThat(dataEvents(lines(response))).containsExactly(textChunk("s2", " Paris", null),
                    textChunk("s2", ".", "stop"), textUsage("s2", 5, 2), "[DONE]");
        }
    }

    @Test
    void nonStreamAnswerIsATextCompletionAssembledFromTheStream() throws Exception {
        bothUpstreams(paris("n1"));
        String body = "{\"model\":\"smollm2\",\"prompt\":[\"The capital of France is\"],\"max_tokens\":8}";
        try (Response response = client.newCall(completion(newKey(), body, "text-whole").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("Content-Type")).startsWith("application/json");
            assertThat(mapper.readTree(response.body().string())).isEqualTo(mapper.readTree(
                    "{\"id\":\"n1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"smollm2\","
                            + "\"choices\":[{\"index\":0,\"text\":\" Paris.\",\"logprobs\":null,"
                            + "\"finish_reason\":\"stop\"}],"
                            + "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}"));
        }
        assertThat(mapper.readTree(onlyRequest().getBody().utf8()).path("stream").asBoolean()).isTrue();
        Map<String, Object> row = usageRow("text-whole");
        assertThat(row.get("ENDPOINT")).isEqualTo("completions");
        assertThat(row.get("STREAMED")).isEqualTo(false);
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(2);
    }

    @Test
    void tokenIdPromptReservesExactlyItsLengthPlusMaxTokens() throws Exception {
        bothUpstreams(paris("r1"));
        String key = newKey(100, 1000, 10);
        String body = "{\"prompt\":[1,2,3,4,5,6,7,8,9,10],\"max_tokens\":900,\"stream\":true}";
        try (Response response = client.newCall(completion(key, body, "text-reserve").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("X-RateLimit-Remaining-Tokens")).isEqualTo("90");
            lines(response);
        }
        usageRow("text-reserve");
        // settled to the 7 tokens used: a second 900-token request fits
        try (Response response = client.newCall(completion(key, body, "text-reserve-2").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("X-RateLimit-Remaining-Tokens")).isEqualTo(Integer.toString(1000 - 7 - 910));
            lines(response);
        }
        String tooMuch = "{\"prompt\":\"hi\",\"max_tokens\":995}";
        try (Response response = client.newCall(completion(key, tooMuch, "text-429").build()).execute()) {
            assertThat(response.code()).isEqualTo(429);
            assertThat(mapper.readTree(response.body().string()).path("error").path("type").asText())
                    .isEqualTo("rate_limit_error");
        }
        assertThat(usageRow("text-429").get("ENDPOINT")).isEqualTo("completions");
    }

    private static MockResponse busy() {
        return new MockResponse.Builder().code(503).setHeader("Content-Type", "application/json")
                .setHeader("Retry-After", "7").body("{\"error\":{\"message\":\"busy\",\"type\":"
                        + "\"service_unavailable\",\"param\":null,\"code\":\"queue_full\"}}").build();
    }

    private static long completionRequests(dev.llmrelay.gateway.support.ScriptedUpstream upstream) {
        return upstream.requests().stream().filter(r -> r.getUrl().encodedPath().equals("/v1/completions")).count();
    }

    @Test
    void busyReplicaIsSkippedForTheOtherAndAllBusyIs503() throws Exception {
        UPSTREAM_A.answer(r -> busy());
        UPSTREAM_B.answer(r -> busy());
        String key = newKey();
        String body = "{\"prompt\":\"x\",\"stream\":true}";
        try (Response response = client.newCall(completion(key, body, "text-busy").build()).execute()) {
            assertThat(response.code()).isEqualTo(503);
            assertThat(response.header("Retry-After")).isEqualTo("7");
        }
        // each replica was asked once
        assertThat(completionRequests(UPSTREAM_A)).isEqualTo(1);
        assertThat(completionRequests(UPSTREAM_B)).isEqualTo(1);

        SseScript script = paris("f1");
        UPSTREAM_B.answer(r -> script.response());
        UPSTREAM_A.answer(r -> busy());
        for (String id : new String[] {"text-failover-1", "text-failover-2"}) {
            try (Response response = client.newCall(completion(key, body, id).build()).execute()) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(dataEvents(lines(response))).containsExactly(textChunk("f1", " Paris", null),
                        textChunk("f1", ".", "stop"), "[DONE]");
            }
            assertThat(usageRow(id).get("END_REASON")).isEqualTo("stop");
        }
        assertThat(completionRequests(UPSTREAM_B)).isEqualTo(2);
    }

    private int admin(String method, String path, String body) throws Exception {
        Request request = new Request.Builder().url(url(path)).header("Authorization", "Bearer test-admin-token")
                .method(method, body == null ? null : RequestBody.create(body, JSON)).build();
        try (Response response = client.newCall(request).execute()) {
            return response.code();
        }
    }

    @Test
    void theContentFilterChecksThePromptAndMasksTheTextStreamedOrNot() throws Exception {
        assertThat(admin("PUT", "/admin/content-filter/lists/text-words",
                "{\"action\":\"mask\",\"checkPrompt\":true,\"words\":[\"secret\"]}")).isEqualTo(200);
        try {
            String key = newKey();
            for (String prompt : new String[] {"\"tell the secret\"", "[\"tell the secret\"]"}) {
                try (Response response = client.newCall(completion(key, "{\"prompt\":" + prompt + "}", "text-cf-p")
                        .build()).execute()) {
                    assertThat(response.code()).isEqualTo(400);
                    JsonNode error = mapper.readTree(response.body().string()).path("error");
                    assertThat(error.path("code").asText()).isEqualTo("content_filter");
                    assertThat(error.path("param").asText()).isEqualTo("prompt");
                }
            }
            SseScript script = new SseScript().event(textChunk("m1", "my sec", null))
                    .event(textChunk("m1", "ret is", null)).event(textChunk("m1", " out", "stop"))
                    .event(textUsage("m1", 3, 3)).done();
            bothUpstreams(script);
            try (Response response = client.newCall(completion(key, "{\"prompt\":\"x\",\"stream\":true}",
                    "text-cf-s").build()).execute()) {
                StringBuilder text = new StringBuilder();
                for (String event : dataEvents(lines(response))) {
                    if (!event.equals("[DONE]")) {
                        text.append(mapper.readTree(event).path("choices").path(0).path("text").asText());
                    }
                }
                assertThat(text.toString()).isEqualTo("my ****** is out");
            }
            try (Response response = client.newCall(completion(key, "{\"prompt\":\"x\"}", "text-cf-n").build())
                    .execute()) {
                assertThat(mapper.readTree(response.body().string()).path("choices").path(0).path("text").asText())
                        .isEqualTo("my ****** is out");
            }
        } finally {
            admin("DELETE", "/admin/content-filter/lists/text-words", null);
        }
    }

    @Test
    void malformedRequestsAre400WithTheParamNamedAndNeverReachAnUpstream() throws Exception {
        bothUpstreams(paris("b1"));
        String key = newKey();
        Map<String, String> cases = Map.of(
                "{\"max_tokens\":4}", "prompt",
                "{\"prompt\":[\"one\",\"two\"]}", "prompt",
                "{\"prompt\":[]}", "prompt",
                "{\"prompt\":[1,-2]}", "prompt",
                "{\"prompt\":\"hi\",\"max_tokens\":0}", "max_tokens",
                "{\"prompt\":\"hi\",\"stream\":\"yes\"}", "stream");
        int i = 0;
        for (Map.Entry<String, String> c : cases.entrySet()) {
            try (Response response = client.newCall(completion(key, c.getKey(), "text-bad-" + i++).build())
                    .execute()) {
                assertThat(response.code()).as(c.getKey()).isEqualTo(400);
                JsonNode error = mapper.readTree(response.body().string()).path("error");
                assertThat(error.path("param").asText()).as(c.getKey()).isEqualTo(c.getValue());
                assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
            }
        }
        assertThat(UPSTREAM_A.requests()).isEmpty();
        assertThat(UPSTREAM_B.requests()).isEmpty();
    }

    @Test
    void nonStreamClientThatLeavesCancelsTheUpstreamAndIsBilledForWhatWasGenerated() throws Exception {
        CountDownLatch threeSent = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SseScript script = new SseScript();
        for (int i = 0; i < 3; i++) {
            script.event(textChunk("g1", "t" + i, null));
        }
        // held after three tokens until the gateway has given up; then writes until its socket is closed
        script.countDownAndAwait(threeSent).await(release).tokensUntilClosed("g1");
        bothUpstreams(script);
        postAndLeave("/v1/completions", newKey(), "{\"prompt\":\"Count\"}", "text-leaves", threeSent);
        Map<String, Object> row = usageRow("text-leaves"); // written when the gateway cancelled the upstream call
        release.countDown();
        assertThat(script.upstreamSocketClosed.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(row.get("ENDPOINT")).isEqualTo("completions");
        assertThat(row.get("END_REASON")).isEqualTo("client_cancelled");
        assertThat(row.get("STREAMED")).isEqualTo(false);
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(3);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("counted");
    }
}
