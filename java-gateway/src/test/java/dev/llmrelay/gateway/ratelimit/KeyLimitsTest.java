package dev.llmrelay.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import okhttp3.Call;
import okhttp3.Request;
import okhttp3.Response;

/** API keys and per-key limits on /v1, against the real gateway and scripted upstreams. */
class KeyLimitsTest extends GatewayTestSupport {

    /** An upstream answer (always a stream: the gateway streams non-stream requests too) with this usage. */
    private static MockResponse completion(int prompt, int completion) {
        return new SseScript().event(SseScript.chunk("x", "hi", null)).event(SseScript.chunk("x", null, "stop"))
                .event(SseScript.usageChunk("x", prompt, completion)).done().response();
    }

    private void bothUpstreams(java.util.function.Supplier<MockResponse> answer) {
        UPSTREAM_A.answer(r -> answer.get());
        UPSTREAM_B.answer(r -> answer.get());
    }

    @Test
    void missingOrWrongKeyGets401InOpenAiShapeAndNeverReachesAnUpstream() throws Exception {
        bothUpstreams(() -> completion(1, 1));
        try (Response response = client.newCall(chat(null, chatBody(true, null), "no-key").build()).execute()) {
            assertThat(response.code()).isEqualTo(401);
            assertThat(response.header("Content-Type")).startsWith("application/json");
            assertThat(response.body().string()).contains("\"error\":{").contains("\"code\":\"invalid_api_key\"")
                    .contains("\"type\":\"invalid_request_error\"").contains("\"param\":null");
        }
        try (Response response = client.newCall(chat("sk-relay-wrong", chatBody(false, null), "wrong-key").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(401);
            assertThat(response.body().string()).contains("Invalid API key");
        }
        try (Response response = client.newCall(new Request.Builder().url(url("/v1/models")).build()).execute()) {
            assertThat(response.code()).isEqualTo(401);
        }
        // a stream client that only accepts event streams still gets a readable 401, not a 406 or 500
        try (Response response = client.newCall(chat(null, chatBody(true, null), "no-key-sse")
                .header("Accept", "text/event-stream").build()).execute()) {
            assertThat(response.code()).isEqualTo(401);
            assertThat(response.body().string()).contains("\"code\":\"invalid_api_key\"");
        }
        // usage: counted into aggregated rows (UnauthenticatedUsageTest), not a row each
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isZero();
    }

    @Test
    void disabledKeyIsRefused() throws Exception {
        bothUpstreams(() -> completion(1, 1));
        var created = keys.create(new dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges("off", null, null, null,
                false));
        try (Response response = client.newCall(chat(created.plaintext(), chatBody(false, null), "disabled-key")
                .build()).execute()) {
            assertThat(response.code()).isEqualTo(401);
        }
    }

    @Test
    void requestNPlusOneInAMinuteGets429WithRetryAfterAndRateLimitHeaders() throws Exception {
        bothUpstreams(() -> completion(5, 1));
        String key = newKey(3, 1_000_000, 10);
        for (int i = 1; i <= 3; i++) {
            try (Response response = client.newCall(chat(key, chatBody(false, null), "rpm-" + i).build()).execute()) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(response.header("X-RateLimit-Limit")).isEqualTo("3");
                assertThat(response.header("X-RateLimit-Remaining")).isEqualTo(Integer.toString(3 - i));
                assertThat(Long.parseLong(response.header("X-RateLimit-Reset"))).isBetween(1L, 60L);
            }
        }
        for (boolean stream : new boolean[] {false, true}) {
            try (Response response = client.newCall(chat(key, chatBody(stream, null), "rpm-4-" + stream).build())
                    .execute()) {
                assertThat(response.code()).isEqualTo(429);
                assertThat(Long.parseLong(response.header("Retry-After"))).isBetween(1L, 60L);
                assertThat(response.header("X-RateLimit-Limit")).isEqualTo("3");
                assertThat(response.header("X-RateLimit-Remaining")).isEqualTo("0");
                assertThat(response.header("X-RateLimit-Reset")).isNotBlank();
                assertThat(response.header("Content-Type")).startsWith("application/json");
                assertThat(response.body().string()).contains("\"code\":\"rate_limit_exceeded\"")
                        .contains("\"type\":\"rate_limit_error\"");
            }
            assertThat(usageRow("rpm-4-" + stream).get("END_REASON")).isEqualTo("rate_limited");
        }
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(3);
    }

    @Test
    void tokensPerMinuteReservesMaxTokensAndSettlesFromTheRealUsage() throws Exception {
        // a stream that asks for up to 900 tokens but uses 10 + 5 (the upstream's usage chunk)
        bothUpstreams(() -> SseScript.answer("t1", 10, "a", "b", "c", "d", "e").response());
        String key = newKey(100, 1000, 10);
        String big = chatBody(true, "\"max_tokens\":900");
        try (Response response = client.newCall(chat(key, big, "tpm-1").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(Integer.parseInt(response.header("X-RateLimit-Remaining-Tokens"))).isLessThan(100);
            assertThat(dataEvents(lines(response))).last().isEqualTo("[DONE]");
        }
        assertThat(usageRow("tpm-1").get("PROMPT_TOKENS")).isEqualTo(10);
        // without settling, 1000 - ~906 would leave too little for a second 900-token reservation
        try (Response response = client.newCall(chat(key, big, "tpm-2").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            int remaining = Integer.parseInt(response.header("X-RateLimit-Remaining-Tokens"));
            // 1000 - 15 settled - this request's reservation (900 + the prompt estimate)
            assertThat(remaining).isBetween(1000 - 15 - 900 - 20, 1000 - 15 - 900);
            lines(response);
        }
        usageRow("tpm-2");

        // usage beyond the reservation is charged too: 5 reserved, 950 used
        bothUpstreams(() -> completion(10, 940));
        try (Response response = client.newCall(chat(key, chatBody(false, "\"max_tokens\":1"), "tpm-3").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200);
        }
        try (Response response = client.newCall(chat(key, chatBody(false, "\"max_tokens\":100"), "tpm-4").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(429);
            assertThat(response.body().string()).contains("Token limit");
        }
    }

    @Test
    void concurrentStreamLimitRefusesTheExtraStreamUntilOneEnds() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        var held = new SseScript().event(SseScript.chunk("s1", "x", null)).await(release)
                .event(SseScript.chunk("s1", null, "stop")).done();
        bothUpstreams(held::response);
        String key = newKey(100, 1_000_000, 1);
        Call first = client.newCall(chat(key, chatBody(true, null), "streams-1").build());
        try (Response open = first.execute()) {
            assertThat(open.code()).isEqualTo(200);
            try (Response refused = client.newCall(chat(key, chatBody(true, null), "streams-2").build()).execute()) {
                assertThat(refused.code()).isEqualTo(429);
                assertThat(refused.header("Retry-After")).isNotBlank();
                assertThat(refused.body().string()).contains("concurrent streams");
            }
            release.countDown();
            assertThat(dataEvents(lines(open))).last().isEqualTo("[DONE]");
        }
        usageRow("streams-1");
        bothUpstreams(() -> SseScript.answer("s3", 1, "y").response());
        try (Response again = client.newCall(chat(key, chatBody(true, null), "streams-3").build()).execute()) {
            assertThat(again.code()).isEqualTo(200);
            lines(again);
        }
    }

    @Test
    void malformedRequestsGet400InOpenAiShape() throws Exception {
        String key = newKey();
        for (String body : new String[] {"{not json", "[]", "{\"messages\":[]}", "{\"messages\":\"hi\"}",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-1}",
                // each budget field is checked, not only the one that wins
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":5,\"max_tokens\":-1}",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":0}",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}"}) {
            try (Response response = client.newCall(chat(key, body, "bad-" + body.length()).build()).execute()) {
                assertThat(response.code()).as(body).isEqualTo(400);
                assertThat(response.body().string()).contains("\"type\":\"invalid_request_error\"");
            }
        }
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isZero();
    }

    @Test
    void bootstrapKeyFromConfigurationIsCreatedOnceAndWorks() throws Exception {
        bothUpstreams(() -> completion(1, 1));
        assertThat(keys.authenticate("sk-relay-bootstrap-for-tests")).get()
                .satisfies(k -> assertThat(k.name()).isEqualTo("bootstrap"));
        assertThat(keys.createIfAbsent("bootstrap", "sk-relay-bootstrap-for-tests")).isFalse();
        try (Response response = client.newCall(chat("sk-relay-bootstrap-for-tests", chatBody(false, null),
                "bootstrap-use").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
        }
        Map<String, Object> row = usageRow("bootstrap-use");
        assertThat(row.get("END_REASON")).isEqualTo("stop");
    }

    @Test
    void unusedKeyStillHasItsFullBudgetAfterAnotherKeyIsLimited() throws Exception {
        bothUpstreams(() -> completion(1, 1));
        String limited = newKey(1, 1_000_000, 10);
        String other = newKey(1, 1_000_000, 10);
        client.newCall(chat(limited, chatBody(false, null), "iso-1").build()).execute().close();
        try (Response response = client.newCall(chat(limited, chatBody(false, null), "iso-2").build()).execute()) {
            assertThat(response.code()).isEqualTo(429);
        }
        try (Response response = client.newCall(chat(other, chatBody(false, null), "iso-3").build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
        }
    }
}
