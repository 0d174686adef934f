package dev.llmrelay.gateway.degrade;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import com.fasterxml.jackson.databind.JsonNode;

import io.micrometer.core.instrument.MeterRegistry;
import okhttp3.Request;
import okhttp3.Response;

/**
 * The admin switches take effect on the next request: the max_tokens cap, a paused model, refused new
 * browser conversations; each shows in the health details and the metrics.
 */
class DegradationSwitchesTest extends DegradeTestSupport {

    @Autowired
    MeterRegistry meters;

    private JsonNode healthDetails() throws Exception {
        try (Response response = client.newCall(new Request.Builder().url(url("/actuator/health")).build()).execute()) {
            return json.readTree(response.body().string()).path("components").path("degradation").path("details");
        }
    }

    private int lastUpstreamMaxTokens() throws Exception {
        var requests = PRIMARY.requests();
        JsonNode sent = json.readTree(requests.get(requests.size() - 1).getBody().utf8());
        return sent.path("max_tokens").isMissingNode() ? -1 : sent.path("max_tokens").asInt();
    }

    private double gauge(String name) {
        return meters.get(name).gauge().value();
    }

    @Test
    void theMaxTokensCapLowersEveryRequestsBudgetUntilLifted() throws Exception {
        String key = newKey(false);
        setPolicy("{\"maxTokensCap\":5}");
        try (Response over = chat(key, "smollm2", true, "\"max_tokens\":100")) {
            assertThat(over.code()).isEqualTo(200);
        }
        assertThat(lastUpstreamMaxTokens()).isEqualTo(5);
        try (Response none = chat(key, "smollm2", false, null)) {
            assertThat(none.code()).isEqualTo(200);
        }
        assertThat(lastUpstreamMaxTokens()).isEqualTo(5);
        try (Response under = chat(key, "smollm2", true, "\"max_tokens\":3")) {
            assertThat(under.code()).isEqualTo(200);
        }
        assertThat(lastUpstreamMaxTokens()).isEqualTo(3);
        try (Response completionField = chat(key, "smollm2", true, "\"max_completion_tokens\":50")) {
            assertThat(completionField.code()).isEqualTo(200);
        }
        JsonNode sent = json.readTree(PRIMARY.requests().get(PRIMARY.requests().size() - 1).getBody().utf8());
        assertThat(sent.path("max_completion_tokens").asInt()).isEqualTo(5);
        assertThat(sent.has("max_tokens")).isFalse();
        assertThat(healthDetails().path("maxTokensCap").asInt()).isEqualTo(5);
        assertThat(gauge("gateway.degrade.max_tokens_cap")).isEqualTo(5.0);

        setPolicy("{\"maxTokensCap\":null}");
        try (Response lifted = chat(key, "smollm2", true, "\"max_tokens\":100")) {
            assertThat(lifted.code()).isEqualTo(200);
        }
        assertThat(lastUpstreamMaxTokens()).isEqualTo(100);
        assertThat(healthDetails().path("maxTokensCap").asText()).isEqualTo("none");
        assertThat(gauge("gateway.degrade.max_tokens_cap")).isEqualTo(0.0);
    }

    @Test
    void aPausedModelIsRefusedWith503AndItsMessageWhileOtherModelsServe() throws Exception {
        var created = keys.create(new dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges("paused", 1000, 1_000_000, 100,
                null, true));
        String key = created.plaintext();
        setPolicy("{\"pausedModels\":{\"smollm2\":\"smollm2 is down for maintenance until 10:00 UTC.\"},"
                + "\"fallbacks\":{\"default\":\"small\"}}");
        for (boolean stream : new boolean[] {true, false}) {
            try (Response paused = chat(key, "smollm2", stream, null)) {
                assertThat(paused.code()).isEqualTo(503);
                JsonNode error = json.readTree(paused.body().string()).path("error");
                assertThat(error.path("code").asText()).isEqualTo("model_paused");
                assertThat(error.path("type").asText()).isEqualTo("server_error");
                assertThat(error.path("message").asText()).isEqualTo("smollm2 is down for maintenance until 10:00 UTC.");
                assertThat(paused.header("X-Relay-Fallback")).isNull(); // a pause is not a fallback
            }
        }
        try (Response other = chat(key, "small", true, null)) {
            assertThat(other.code()).isEqualTo(200);
        }
        assertThat(PRIMARY.chatRequests()).isZero();
        assertThat(SMALL.chatRequests()).isEqualTo(1);
        assertThat(healthDetails().path("pausedModels").path("smollm2").asText())
                .isEqualTo("smollm2 is down for maintenance until 10:00 UTC.");
        assertThat(gauge("gateway.degrade.paused_models")).isEqualTo(1.0);
        usageRecorder.flush();
        long usageRows = jdbc.sql("SELECT COUNT(*) FROM usage_record WHERE key_id = ? AND end_reason = 'degraded' "
                + "AND http_status = 503").param(created.key().id()).query(Long.class).single();
        assertThat(usageRows).isEqualTo(2);

        setPolicy("{\"pausedModels\":{\"smollm2\":null}}");
        try (Response resumed = chat(key, "smollm2", true, null)) {
            assertThat(resumed.code()).isEqualTo(200);
        }
        assertThat(healthDetails().path("pausedModels").size()).isZero();
    }

    @Test
    void refusingNewBrowserConversationsLetsExistingOnesGoOn() throws Exception {
        String cookie = signIn(newKey(false));
        var first = sendMessage(cookie, null, "Hello");
        assertThat(first.statusCode()).isEqualTo(200);
        String conversationId = json.readTree(first.body()).path("conversationId").asText();
        setPolicy("{\"refuseNewConversations\":\"Busy: only existing conversations for now.\"}");
        var refused = sendMessage(cookie, null, "Hello again");
        assertThat(refused.statusCode()).isEqualTo(503);
        assertThat(refused.headers().firstValue("Content-Type").orElseThrow()).startsWith("application/problem+json");
        JsonNode problem = json.readTree(refused.body());
        assertThat(problem.path("detail").asText()).isEqualTo("Busy: only existing conversations for now.");
        assertThat(problem.path("code").asText()).isEqualTo("new_conversations_refused");
        long conversations = jdbc.sql("SELECT COUNT(*) FROM conversation").query(Long.class).single();
        awaitReplyDone(conversationId);
        assertThat(sendMessage(cookie, conversationId, "And more").statusCode()).isEqualTo(200);
        assertThat(jdbc.sql("SELECT COUNT(*) FROM conversation").query(Long.class).single()).isEqualTo(conversations);
        assertThat(healthDetails().path("refuseNewConversations").asBoolean()).isTrue();
        assertThat(gauge("gateway.degrade.refuse_new_conversations")).isEqualTo(1.0);
        // /v1 is not a browser conversation
        try (Response v1 = chat(newKey(false), "smollm2", true, null)) {
            assertThat(v1.code()).isEqualTo(200);
        }

        setPolicy("{\"refuseNewConversations\":false}");
        assertThat(sendMessage(cookie, null, "Hello once more").statusCode()).isEqualTo(200);
        assertThat(healthDetails().path("refuseNewConversations").asBoolean()).isFalse();
    }

    @Test
    void aSwitchStoredThroughAnotherInstanceAppliesHereAtItsNextPoll() throws Exception {
        String key = newKey(false);
        // what another gateway instance's admin call writes: the row and the version bump, one transaction
        jdbc.sql("INSERT INTO degrade_setting (kind, subject, setting_value) VALUES ('paused', 'small', "
                + "'Paused on another instance.')").update();
        jdbc.sql("UPDATE policy_version SET version = version + 1 WHERE id = 1").update();
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!"Paused on another instance.".equals(policy.current().pausedModels().get("small"))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the stored pause never reached this instance");
            }
            Thread.sleep(20);
        }
        try (Response paused = chat(key, "small", false, null)) {
            assertThat(paused.code()).isEqualTo(503);
            assertThat(json.readTree(paused.body().string()).path("error").path("message").asText())
                    .isEqualTo("Paused on another instance.");
        }
        assertThat(SMALL.chatRequests()).isZero();
    }

    private void awaitReplyDone(String conversationId) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (jdbc.sql("SELECT COUNT(*) FROM chat_message WHERE conversation_id = ? AND status = 'streaming'")
                .param(conversationId).query(Long.class).single() > 0) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the first reply never ended");
            }
            Thread.sleep(10);
        }
    }
}
