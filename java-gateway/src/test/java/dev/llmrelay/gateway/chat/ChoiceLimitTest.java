package dev.llmrelay.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;


import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import okhttp3.Response;

/**
 * A request for more choices than the upstream may serve ({@code gateway.max-choices}, the model-service's
 * MODEL_SERVICE_MAX_N) can never succeed: 400 naming {@code n}, before any of the key's tokens are reserved.
 * Before, it was checked against the key's token budget first and got a 429 the client would retry forever.
 * A gateway and an upstream of this test's own ({@link FreshGateway}).
 */
class ChoiceLimitTest {


    private final ObjectMapper mapper = new ObjectMapper();
    private FreshGateway gateway;

    @BeforeEach
    void startGateway() {
        gateway = FreshGateway.start();
        // usage 7 + 1: what each served request settles to
        gateway.upstream().answer(r -> switch (r.getUrl().encodedPath()) {
            case "/v1/chat/completions" -> SseScript.answer("r", 7, "ok").response();
            case "/v1/completions" -> new SseScript().event(TextCompletionsApiTest.textChunk("t", "ok", "stop"))
                    .event(TextCompletionsApiTest.textUsage("t", 7, 1)).done().response();
            default -> new MockResponse.Builder().code(404).build();
        });
    }

    @AfterEach
    void stopGateway() {
        gateway.close();
    }


    private static String chat(String extra) {
        return "{\"model\":\"smollm2\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}]," + extra + "}";
    }

    @Test
    void nOverTheLimitIs400NamingNAndReservesNothingEvenWhenTheKeysBudgetIsPartlySpent() throws Exception {
        String key = gateway.newKey(1000, 1000, 10);
        try (Response first = gateway.post("/v1/chat/completions", key, chat("\"max_tokens\":5"))) {
            assertThat(first.code()).isEqualTo(200);
            // prompt estimate 7 ("Hello there": 11 characters / 4 + 4 per message) + 5
            assertThat(first.header("X-RateLimit-Remaining-Tokens")).isEqualTo("988");
            first.body().string();
        }
        String refused = "{\"error\":{\"message\":\"n: at most 4 choices per request (gateway.max-choices), got 1000\","
                + "\"type\":\"invalid_request_error\",\"param\":\"n\",\"code\":\"integer_above_max_value\"}}";
        try (Response response = gateway.post("/v1/chat/completions", key, chat("\"n\":1000"))) {
            assertThat(response.code()).isEqualTo(400);
            assertThat(mapper.readTree(response.body().string())).isEqualTo(mapper.readTree(refused));
        }
        try (Response response = gateway.post("/v1/completions", key, "{\"model\":\"smollm2\",\"prompt\":\"Hi\",\"n\":1000}")) {
            assertThat(response.code()).isEqualTo(400);
            assertThat(mapper.readTree(response.body().string())).isEqualTo(mapper.readTree(refused));
        }
        // nothing was reserved or charged for them: the first settled to its usage (7 + 1), this reserves 7 + 5
        try (Response next = gateway.post("/v1/chat/completions", key, chat("\"max_tokens\":5"))) {
            assertThat(next.code()).isEqualTo(200);
            assertThat(next.header("X-RateLimit-Remaining-Tokens")).isEqualTo(String.valueOf(1000 - 8 - 12));
            next.body().string();
        }
        assertThat(gateway.upstream().chatRequests()).isEqualTo(2);
        assertThat(gateway.upstream().requests()).hasSize(2);
    }

    @Test
    void nAtTheLimitIsServed() throws Exception {
        try (Response response = gateway.post("/v1/chat/completions", gateway.newKey(), chat("\"n\":4,\"max_tokens\":5"))) {
            assertThat(response.code()).isEqualTo(200);
            response.body().string();
        }
        assertThat(gateway.upstream().chatRequests()).isEqualTo(1);
    }
}
