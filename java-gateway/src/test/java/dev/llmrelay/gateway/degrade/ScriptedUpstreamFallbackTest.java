package dev.llmrelay.gateway.degrade;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;

import mockwebserver3.MockResponse;
import okhttp3.Response;

/**
 * A fallback route when the primary pool is unhealthy (its only replica's breaker open), or when every
 * replica was busy or failed before the first event, on a scripted
 * upstream per pool: a key that allows it is served by the fallback model's pool on /v1 (stream and
 * non-stream) and the browser API, and the answer says so; a key that does not gets the 503 it got before.
 */
class ScriptedUpstreamFallbackTest extends DegradeTestSupport {

    @Test
    void anUnhealthyPoolsRequestsGoToTheFallbackPoolForKeysThatAllowIt() throws Exception {
        setPolicy("{\"fallbacks\":{\"default\":\"small\"}}");
        primaryUpstream().breaker().transitionToOpenState();
        String allowed = newKey(true);

        try (Response stream = chat(allowed, "smollm2", true, null)) {
            assertThat(stream.code()).isEqualTo(200);
            assertThat(stream.header("X-Relay-Fallback")).isEqualTo("smollm2->small");
            String body = stream.body().string();
            assertThat(body).contains("\"model\":\"small\"").contains("Hello").doesNotContain("\"model\":\"smollm2\"");
            assertThat(body.strip()).endsWith("data: [DONE]");
        }
        try (Response complete = chat(allowed, "smollm2", false, null)) {
            assertThat(complete.code()).isEqualTo(200);
            assertThat(complete.header("X-Relay-Fallback")).isEqualTo("smollm2->small");
            JsonNode completion = json.readTree(complete.body().string());
            assertThat(completion.path("model").asText()).isEqualTo("small");
            assertThat(completion.path("choices").path(0).path("message").path("content").asText()).isEqualTo("Hello");
        }
        var browser = sendMessage(signIn(allowed), null, "Hello");
        assertThat(browser.statusCode()).isEqualTo(200);
        assertThat(browser.headers().firstValue("X-Relay-Fallback")).contains("default->small");
        assertThat(json.readTree(browser.body()).path("fallback").asText()).isEqualTo("default->small");
        assertThat(SMALL.chatRequests()).isEqualTo(3);
        assertThat(PRIMARY.chatRequests()).isZero();

        // a key without allowFallback: the primary pool's own answer, no fallback
        try (Response refused = chat(newKey(false), "smollm2", true, null)) {
            assertThat(refused.code()).isEqualTo(503);
            assertThat(refused.header("X-Relay-Fallback")).isNull();
            // a stream client gets the error as one event, then [DONE]
            assertThat(refused.body().string()).contains("\"code\":\"upstream_unavailable\"");
        }
        assertThat(SMALL.chatRequests()).isEqualTo(3);
    }

    @Test
    void aHealthyPoolServesItselfAndTheFallbacksOwnModelIsNeverRerouted() throws Exception {
        setPolicy("{\"fallbacks\":{\"default\":\"small\"}}");
        String allowed = newKey(true);
        try (Response primary = chat(allowed, "smollm2", true, null)) {
            assertThat(primary.code()).isEqualTo(200);
            assertThat(primary.header("X-Relay-Fallback")).isNull();
            assertThat(primary.body().string()).contains("\"model\":\"smollm2\"");
        }
        try (Response small = chat(allowed, "small", false, null)) {
            assertThat(small.code()).isEqualTo(200);
            assertThat(small.header("X-Relay-Fallback")).isNull();
            assertThat(json.readTree(small.body().string()).path("model").asText()).isEqualTo("small");
        }
        assertThat(PRIMARY.chatRequests()).isEqualTo(1);
        assertThat(SMALL.chatRequests()).isEqualTo(1);
    }

    @Test
    void whenEveryReplicaIsBusyOrFailsBeforeTheFirstEventTheFallbackPoolServes() throws Exception {
        setPolicy("{\"fallbacks\":{\"default\":\"small\"}}");
        PRIMARY.answer(request -> new MockResponse.Builder().code(503).setHeader("Retry-After", "7")
                .setHeader("Content-Type", "application/json")
                .body("{\"error\":{\"message\":\"busy\",\"type\":\"server_error\",\"param\":null,"
                        + "\"code\":\"busy\"}}").build());
        String allowed = newKey(true);
        try (Response stream = chat(allowed, "smollm2", true, null)) {
            assertThat(stream.code()).isEqualTo(200);
            assertThat(stream.header("X-Relay-Fallback")).isEqualTo("smollm2->small");
            assertThat(stream.body().string()).contains("\"model\":\"small\"").contains("Hello");
        }
        try (Response complete = chat(allowed, "smollm2", false, null)) {
            assertThat(complete.code()).isEqualTo(200);
            assertThat(complete.header("X-Relay-Fallback")).isEqualTo("smollm2->small");
            assertThat(json.readTree(complete.body().string()).path("model").asText()).isEqualTo("small");
        }
        // a key without allowFallback gets the busy answer as before
        try (Response busy = chat(newKey(false), "smollm2", false, null)) {
            assertThat(busy.code()).isEqualTo(503);
            assertThat(busy.header("Retry-After")).isEqualTo("7");
            assertThat(busy.header("X-Relay-Fallback")).isNull();
        }
        assertThat(PRIMARY.chatRequests()).isEqualTo(3);
        assertThat(SMALL.chatRequests()).isEqualTo(2);

        // a replica that fails (500 in OpenAI's shape) before any event: the same
        PRIMARY.answer(request -> new MockResponse.Builder().code(500).setHeader("Content-Type", "application/json")
                .body("{\"error\":{\"message\":\"engine died\",\"type\":\"server_error\",\"param\":null,"
                        + "\"code\":\"internal_error\"}}").build());
        try (Response stream = chat(allowed, "smollm2", true, null)) {
            assertThat(stream.code()).isEqualTo(200);
            assertThat(stream.header("X-Relay-Fallback")).isEqualTo("smollm2->small");
        }
        assertThat(PRIMARY.chatRequests()).isEqualTo(1);
    }
}
