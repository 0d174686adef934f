package dev.llmrelay.gateway.degrade;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;

import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/** The admin API of degradation and the keys' allowFallback: bad input is a 400 problem detail and changes nothing. */
class AdminDegradationApiTest extends DegradeTestSupport {

    private void assertRefused(String patch, String detailPart) throws Exception {
        JsonNode before = getPolicy();
        try (Response response = patchPolicy(patch)) {
            assertThat(response.code()).isEqualTo(400);
            assertThat(response.header("Content-Type")).startsWith("application/problem+json");
            JsonNode problem = json.readTree(response.body().string());
            assertThat(problem.path("title").asText()).isEqualTo("Bad request");
            assertThat(problem.path("detail").asText()).contains(detailPart);
        }
        assertThat(getPolicy()).isEqualTo(before);
    }

    @Test
    void aValidChangeIsStoredAndShownWithThePools() throws Exception {
        setPolicy("{\"maxTokensCap\":256,\"pausedModels\":{\"small\":true},\"refuseNewConversations\":true,"
                + "\"fallbacks\":{\"default\":\"small\"}}");
        JsonNode policy = getPolicy();
        assertThat(policy.path("maxTokensCap").asInt()).isEqualTo(256);
        assertThat(policy.path("pausedModels").path("small").asText())
                .isEqualTo("The model 'small' is paused by the operator. Try again later.");
        assertThat(policy.path("refuseNewConversations").asText()).startsWith("New conversations are paused");
        assertThat(policy.path("fallbacks").path("default").asText()).isEqualTo("small");
        assertThat(policy.path("pools").path("default").path("limit").asInt()).isEqualTo(LIMIT);
        assertThat(policy.path("pools").path("small").path("inFlight").asInt()).isZero();
        // stored: what another instance reads is the same policy
        assertThat(jdbc.sql("SELECT COUNT(*) FROM degrade_setting").query(Long.class).single()).isEqualTo(4);

        setPolicy("{\"maxTokensCap\":null,\"pausedModels\":{\"small\":null},\"refuseNewConversations\":false,"
                + "\"fallbacks\":{\"default\":null}}");
        policy = getPolicy();
        assertThat(policy.path("maxTokensCap").isNull()).isTrue();
        assertThat(policy.path("pausedModels").size()).isZero();
        assertThat(policy.path("refuseNewConversations").isNull()).isTrue();
        assertThat(policy.path("fallbacks").size()).isZero();
        assertThat(jdbc.sql("SELECT COUNT(*) FROM degrade_setting").query(Long.class).single()).isZero();
    }

    @Test
    void badInputIsA400ProblemAndNothingOfTheChangeIsApplied() throws Exception {
        setPolicy("{\"maxTokensCap\":100}");
        assertRefused("{\"maxTokensCap\":-5}", "maxTokensCap must be an integer from 1");
        assertRefused("{\"maxTokensCap\":0}", "maxTokensCap must be an integer from 1");
        assertRefused("{\"maxTokensCap\":2.5}", "maxTokensCap must be an integer from 1");
        assertRefused("{\"maxTokensCap\":\"many\"}", "maxTokensCap must be an integer from 1");
        assertRefused("{\"fallbacks\":{\"default\":\"no-such-model\"}}", "'no-such-model' has no upstream pool");
        assertRefused("{\"fallbacks\":{\"no-such-pool\":\"small\"}}", "'no-such-pool' is not an upstream pool");
        assertRefused("{\"fallbacks\":{\"small\":\"small\"}}", "falls back to itself");
        assertRefused("{\"fallbacks\":{\"small\":\"default\"}}", "has no upstream pool of its own");
        assertRefused("{\"fallbacks\":{\"default\":42}}", "must be a model name or null");
        assertRefused("{\"pausedModels\":{\"small\":\"  \"}}", "the message must be 1 to 1000 characters");
        assertRefused("{\"pausedModels\":[\"small\"]}", "pausedModels must be an object");
        assertRefused("{\"refuseNewConversations\":7}", "refuseNewConversations must be");
        assertRefused("{\"maxTokenCap\":5}", "Unknown member 'maxTokenCap'");
        assertRefused("[1]", "must be a JSON object");
        StringBuilder huge = new StringBuilder("{\"pausedModels\":{");
        for (int i = 0; i <= DegradeAdmin.MAX_PAUSED; i++) {
            huge.append(i == 0 ? "" : ",").append("\"m").append(i).append("\":true");
        }
        assertRefused(huge.append("}}").toString(), "at most 1000 paused models");
        // a valid part with an invalid one: neither is applied
        assertRefused("{\"maxTokensCap\":50,\"pausedModels\":{\"small\":true},\"fallbacks\":{\"default\":\"nope\"}}",
                "'nope' has no upstream pool");
        assertThat(getPolicy().path("maxTokensCap").asInt()).isEqualTo(100);
        assertThat(getPolicy().path("pausedModels").size()).isZero();
        try (Response notJson = client.newCall(new Request.Builder().url(url("/admin/degradation"))
                .header("Authorization", "Bearer " + ADMIN).patch(RequestBody.create("{nope", JSON)).build())
                .execute()) {
            assertThat(notJson.code()).isEqualTo(400);
            assertThat(notJson.header("Content-Type")).startsWith("application/problem+json");
        }
    }

    @Test
    void theAdminTokenIsRequired() throws Exception {
        try (Response response = client.newCall(new Request.Builder().url(url("/admin/degradation"))
                .patch(RequestBody.create("{\"maxTokensCap\":1}", JSON)).build()).execute()) {
            assertThat(response.code()).isEqualTo(401);
        }
        assertThat(getPolicy().path("maxTokensCap").isNull()).isTrue();
    }

    @Test
    void aKeysAllowFallbackIsSetThroughTheKeysApi() throws Exception {
        long id;
        try (Response created = client.newCall(new Request.Builder().url(url("/admin/keys"))
                .header("Authorization", "Bearer " + ADMIN)
                .post(RequestBody.create("{\"name\":\"fb\",\"allowFallback\":true}", JSON)).build()).execute()) {
            assertThat(created.code()).isEqualTo(201);
            JsonNode key = json.readTree(created.body().string());
            assertThat(key.path("allowFallback").asBoolean()).isTrue();
            id = key.path("id").asLong();
        }
        try (Response patched = client.newCall(new Request.Builder().url(url("/admin/keys/" + id))
                .header("Authorization", "Bearer " + ADMIN)
                .patch(RequestBody.create("{\"allowFallback\":false}", JSON)).build()).execute()) {
            assertThat(patched.code()).isEqualTo(200);
            JsonNode key = json.readTree(patched.body().string());
            assertThat(key.path("allowFallback").asBoolean()).isFalse();
            assertThat(key.path("name").asText()).isEqualTo("fb");
        }
        try (Response plain = client.newCall(new Request.Builder().url(url("/admin/keys"))
                .header("Authorization", "Bearer " + ADMIN)
                .post(RequestBody.create("{\"name\":\"plain\"}", JSON)).build()).execute()) {
            assertThat(json.readTree(plain.body().string()).path("allowFallback").asBoolean()).isFalse();
        }
    }
}
