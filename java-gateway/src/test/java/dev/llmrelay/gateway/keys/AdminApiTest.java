package dev.llmrelay.gateway.keys;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/** The admin API over real HTTP: token checks, key lifecycle, usage totals; RFC 9457 problems. */
class AdminApiTest extends GatewayTestSupport {

    static final String ADMIN = "Bearer test-admin-token";

    @Autowired
    ObjectMapper json;

    private Response admin(String method, String path, String body, String authorization) throws Exception {
        Request.Builder request = new Request.Builder().url(url(path))
                .method(method, body == null ? null : RequestBody.create(body, JSON));
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        return client.newCall(request.build()).execute();
    }

    @Test
    void adminApiRefusesAMissingOrWrongAdminTokenWithAProblemDetail() throws Exception {
        for (String auth : new String[] {null, "Bearer wrong-token", "Basic dGVzdA==", "Bearer "}) {
            for (String path : new String[] {"/admin/keys", "/admin/usage"}) {
                try (Response response = admin("GET", path, null, auth)) {
                    assertThat(response.code()).as(path + " with " + auth).isEqualTo(401);
                    assertThat(response.header("Content-Type")).startsWith("application/problem+json");
                    JsonNode problem = json.readTree(response.body().string());
                    assertThat(problem.path("status").asInt()).isEqualTo(401);
                    assertThat(problem.path("title").asText()).isNotBlank();
                }
            }
            try (Response response = admin("POST", "/admin/keys", "{\"name\":\"x\"}", auth)) {
                assertThat(response.code()).isEqualTo(401);
            }
        }
    }

    @Test
    void keyLifecycleCreateListPatchDeleteAndThePlaintextIsShownOnce() throws Exception {
        UPSTREAM_A.answer(r -> new MockResponse.Builder().setHeader("Content-Type", "application/json")
                .body("{\"object\":\"list\",\"data\":[{\"id\":\"smollm2\",\"object\":\"model\"}]}").build());
        UPSTREAM_B.answer(r -> new MockResponse.Builder().setHeader("Content-Type", "application/json")
                .body("{\"object\":\"list\",\"data\":[{\"id\":\"smollm2\",\"object\":\"model\"}]}").build());
        JsonNode created;
        try (Response response = admin("POST", "/admin/keys",
                "{\"name\":\"billing-service\",\"requestsPerMinute\":7,\"tokensPerMinute\":5000}", ADMIN)) {
            assertThat(response.code()).isEqualTo(201);
            created = json.readTree(response.body().string());
        }
        String plaintext = created.path("key").asText();
        long id = created.path("id").asLong();
        assertThat(plaintext).startsWith("sk-relay-");
        assertThat(created.path("requestsPerMinute").asInt()).isEqualTo(7);
        assertThat(created.path("maxConcurrentStreams").asInt()).isEqualTo(100); // the configured default

        // only the hash is stored
        String stored = jdbc.sql("SELECT key_hash FROM api_key WHERE id = ?").param(id).query(String.class).single();
        assertThat(stored).hasSize(64).doesNotContain(plaintext);

        try (Response models = client.newCall(new Request.Builder().url(url("/v1/models"))
                .header("Authorization", "Bearer " + plaintext).build()).execute()) {
            assertThat(models.code()).isEqualTo(200);
            assertThat(models.body().string()).contains("smollm2");
        }

        try (Response response = admin("GET", "/admin/keys", null, ADMIN)) {
            String body = response.body().string();
            assertThat(body).contains("billing-service").doesNotContain(plaintext);
        }

        try (Response response = admin("PATCH", "/admin/keys/" + id, "{\"enabled\":false,\"tokensPerMinute\":9}",
                ADMIN)) {
            assertThat(response.code()).isEqualTo(200);
            JsonNode patched = json.readTree(response.body().string());
            assertThat(patched.path("enabled").asBoolean()).isFalse();
            assertThat(patched.path("tokensPerMinute").asInt()).isEqualTo(9);
            assertThat(patched.path("requestsPerMinute").asInt()).isEqualTo(7);
            assertThat(patched.has("key")).isFalse();
        }
        try (Response refused = client.newCall(new Request.Builder().url(url("/v1/models"))
                .header("Authorization", "Bearer " + plaintext).build()).execute()) {
            assertThat(refused.code()).isEqualTo(401);
        }

        try (Response response = admin("DELETE", "/admin/keys/" + id, null, ADMIN)) {
            assertThat(response.code()).isEqualTo(204);
        }
        try (Response response = admin("DELETE", "/admin/keys/" + id, null, ADMIN)) {
            assertThat(response.code()).isEqualTo(404);
            assertThat(response.header("Content-Type")).startsWith("application/problem+json");
        }
    }

    @Test
    void invalidAdminInputGets400ProblemNot500() throws Exception {
        for (String body : new String[] {"{\"requestsPerMinute\":0}", "{\"tokensPerMinute\":-5}", "{bad json",
                "{\"requestsPerMinute\":\"many\"}"}) {
            try (Response response = admin("POST", "/admin/keys", body, ADMIN)) {
                assertThat(response.code()).as(body).isEqualTo(400);
                assertThat(response.header("Content-Type")).startsWith("application/problem+json");
            }
        }
        try (Response response = admin("GET", "/admin/usage?from=not-a-date", null, ADMIN)) {
            assertThat(response.code()).isEqualTo(400);
        }
        try (Response response = admin("PATCH", "/admin/keys/999999", "{\"name\":\"x\"}", ADMIN)) {
            assertThat(response.code()).isEqualTo(404);
        }
    }

    @Test
    void usageTotalsPerKeyCountRequestsTokensAndEndReasons() throws Exception {
        UPSTREAM_A.answer(r -> SseScript.answer("u", 11, "a", "b", "c").response());
        UPSTREAM_B.answer(r -> SseScript.answer("u", 11, "a", "b", "c").response());
        var created = keys.create(new ApiKeyService.KeyChanges("metered", 2, 100000, 10, null));
        for (int i = 0; i < 3; i++) {
            try (Response response = client.newCall(chat(created.plaintext(), chatBody(true, null), "metered-" + i)
                    .build()).execute()) {
                lines(response);
            }
        }
        usageRow("metered-2");
        usageRow("metered-1");
        try (Response response = admin("GET", "/admin/usage?keyId=" + created.key().id(), null, ADMIN)) {
            assertThat(response.code()).isEqualTo(200);
            JsonNode totals = json.readTree(response.body().string()).path("keys").path(0);
            assertThat(totals.path("keyName").asText()).isEqualTo("metered");
            assertThat(totals.path("requests").asLong()).isEqualTo(3);
            assertThat(totals.path("promptTokens").asLong()).isEqualTo(22);
            assertThat(totals.path("completionTokens").asLong()).isEqualTo(6);
            assertThat(totals.path("rateLimited").asLong()).isEqualTo(1);
        }
        try (Response response = admin("GET", "/admin/usage/requests?limit=3&keyId=" + created.key().id(), null,
                ADMIN)) {
            JsonNode rows = json.readTree(response.body().string());
            assertThat(rows).hasSize(3);
            assertThat(rows.path(0).path("endReason").asText()).isEqualTo("rate_limited");
            assertThat(rows.path(1).path("endReason").asText()).isEqualTo("stop");
            assertThat(rows.path(1).path("upstream").asText()).startsWith("http://127.0.0.1:");
            assertThat(rows.path(1).has("ttftMs")).isTrue();
        }
    }
}
