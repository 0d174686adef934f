package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import dev.llmrelay.gateway.policy.PolicyVersions;
import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import okhttp3.Response;

/** The model's context length, learnt from each upstream's /v1/models by the health probe. */
class ContextLengthTest extends GatewayTestSupport {

    @Autowired
    UpstreamHealthProber prober;
    @Autowired
    UpstreamModels models;
    @Autowired
    PolicyVersions policies;

    private static MockResponse modelService(RecordedRequest request, int maxModelLen) {
        return switch (request.getUrl().encodedPath()) {
            case "/health" -> new MockResponse.Builder().body("{\"status\":\"ready\"}").build();
            case "/v1/models" -> new MockResponse.Builder().setHeader("Content-Type", "application/json")
                    .body("{\"object\":\"list\",\"data\":[{\"id\":\"smollm2\",\"object\":\"model\",\"created\":1,"
                            + "\"owned_by\":\"llm-relay\",\"max_model_len\":" + maxModelLen + "}]}")
                    .build();
            default -> SseScript.answer("x", 7, "Hi").response(); // the gateway always asks for a stream
        };
    }

    private void learn(int maxModelLen) throws InterruptedException {
        UPSTREAM_A.answer(r -> modelService(r, maxModelLen));
        UPSTREAM_B.answer(r -> modelService(r, maxModelLen));
        prober.probeAll();
        awaitTrue("context length learnt", () -> models.contextLength("smollm2").isPresent());
        // The test contexts share one database: another test's operator max_tokens cap (lifted by now) may
        // still be in this context's policy snapshot until its next poll; read the policies in force now.
        policies.refresh();
    }

    @Test
    void scriptedModelOf2048TokensGets400ForMaxTokensItCanNeverProduce() throws Exception {
        try {
            learn(2048);
            String key = newKey();
            for (String field : new String[] {"max_tokens", "max_completion_tokens"}) {
                for (boolean stream : new boolean[] {true, false}) {
                    try (Response response = client.newCall(chat(key, chatBody(stream, "\"" + field
                            + "\":1000000000"), "too-long-" + field + stream).build()).execute()) {
                        assertThat(response.code()).isEqualTo(400);
                        String body = response.body().string();
                        assertThat(body).contains("\"code\":\"context_length_exceeded\"")
                                .contains("\"param\":\"" + field + "\"").contains("2048");
                    }
                }
            }
            assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isZero();
        } finally {
            models.forgetAll();
        }
    }

    @Test
    void scriptedModelOf64TokensReservesAtMostWhatItCanProduce() throws Exception {
        try {
            learn(64);
            // no max_tokens: the default estimate (1024) is more than a 64-token model can produce
            try (Response response = client.newCall(chat(newKey(1000, 1000, 10), chatBody(false, null), "capped")
                    .build()).execute()) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(response.header("X-RateLimit-Remaining-Tokens")).isEqualTo(Integer.toString(1000 - 64));
            }
        } finally {
            models.forgetAll();
        }
    }
}
