package dev.llmrelay.gateway.system;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import okhttp3.Request;
import okhttp3.Response;

/** The page directory, CORS, health, OpenAPI and 404s on the real server. */
class WebSurfaceTest extends GatewayTestSupport {

    private Response get(String path) throws Exception {
        return client.newCall(new Request.Builder().url(url(path)).build()).execute();
    }

    @Test
    void servesThePageDirectoryAtTheRoot() throws Exception {
        try (Response response = get("/")) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.body().string()).contains("llm-relay test page");
        }
        try (Response response = get("/app.js")) {
            assertThat(response.code()).isEqualTo(200);
        }
        try (Response response = get("/no-such-file.js")) {
            assertThat(response.code()).isEqualTo(404);
        }
    }

    @Test
    void corsPreflightAllowsOnlyConfiguredOriginsAndExposesRateLimitHeaders() throws Exception {
        Request allowed = new Request.Builder().url(url("/v1/chat/completions")).method("OPTIONS", null)
                .header("Origin", "http://allowed.example").header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "authorization,content-type").build();
        try (Response response = client.newCall(allowed).execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.header("Access-Control-Allow-Origin")).isEqualTo("http://allowed.example");
        }
        Request other = allowed.newBuilder().header("Origin", "http://evil.example").build();
        try (Response response = client.newCall(other).execute()) {
            assertThat(response.code()).isEqualTo(403);
            assertThat(response.header("Access-Control-Allow-Origin")).isNull();
        }
        Request actual = new Request.Builder().url(url("/v1/models")).header("Origin", "http://allowed.example")
                .build();
        try (Response response = client.newCall(actual).execute()) {
            assertThat(response.header("Access-Control-Expose-Headers")).contains("X-RateLimit-Remaining")
                    .contains("Retry-After");
        }
    }

    @Test
    void healthAndOpenApiAreServed() throws Exception {
        try (Response response = get("/actuator/health")) {
            assertThat(response.code()).isEqualTo(200);
            String health = response.body().string();
            assertThat(health).contains("\"status\":\"UP\"").contains("\"upstreams\"")
                    .contains(UPSTREAM_A.baseUrl()).contains("\"breaker\":\"CLOSED\"");
        }
        try (Response response = get("/v3/api-docs")) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(response.body().string()).contains("/v1/chat/completions").contains("/admin/keys");
        }
    }

    @Test
    void unknownV1PathGets404InOpenAiShape() throws Exception {
        try (Response response = get("/v1/nothing-here")) {
            assertThat(response.code()).isEqualTo(404);
            assertThat(response.body().string()).contains("\"error\"");
        }
        try (Response response = client.newCall(new Request.Builder().url(url("/v1/chat/completions")).build())
                .execute()) {
            assertThat(response.code()).isEqualTo(405);
            assertThat(response.body().string()).contains("\"error\"");
        }
    }

    @Test
    void multipartWithoutBoundaryGets4xxInTheSurfacesErrorShape() throws Exception {
        String key = newKey();
        String[][] routes = {
                {"/v1/chat/completions", "Bearer " + key, "openai"},
                {"/admin/keys", "Bearer test-admin-token", "problem"},
                {"/api/session", null, "problem"},
                {"/api/chat/messages", null, "problem"}};
        for (String type : new String[] {"multipart/form-data", "multipart/mixed", "multipart/form-data; charset=utf-8"}) {
            for (String[] route : routes) {
                Request.Builder request = new Request.Builder().url(url(route[0]))
                        .post(okhttp3.RequestBody.create("{\"name\":\"x\"}".getBytes(),
                                okhttp3.MediaType.get(type)));
                if (route[1] != null) {
                    request.header("Authorization", route[1]);
                }
                try (Response response = client.newCall(request.build()).execute()) {
                    String what = type + " to " + route[0];
                    assertThat(response.code()).as(what).isIn(400, 415);
                    String body = response.body().string();
                    if (route[2].equals("openai")) {
                        assertThat(response.header("Content-Type")).as(what).startsWith("application/json");
                        assertThat(body).as(what).contains("\"error\"").contains("\"type\":\"invalid_request_error\"");
                    } else {
                        assertThat(response.header("Content-Type")).as(what).startsWith("application/problem+json");
                        assertThat(body).as(what).contains("\"status\":" + response.code());
                    }
                }
            }
        }
    }

    @Test
    void requestIdIsGeneratedWhenMissingAndReplacedWhenUnsafe() throws Exception {
        try (Response response = get("/v1/models")) {
            assertThat(response.header("X-Request-Id")).startsWith("req-");
        }
        Request unsafe = new Request.Builder().url(url("/v1/models")).header("X-Request-Id", "bad id\twith tab")
                .build();
        try (Response response = client.newCall(unsafe).execute()) {
            assertThat(response.header("X-Request-Id")).startsWith("req-");
        }
        Request safe = new Request.Builder().url(url("/actuator/health")).header("X-Request-Id", "trace-42").build();
        try (Response response = client.newCall(safe).execute()) {
            assertThat(response.header("X-Request-Id")).isEqualTo("trace-42");
        }
    }

    @Test
    void modelsWithNoUpstreamAbleToAnswerGives503WithRetryAfter() throws Exception {
        UPSTREAM_A.answer(r -> new mockwebserver3.MockResponse.Builder().code(503).body("{}").build());
        UPSTREAM_B.answer(r -> new mockwebserver3.MockResponse.Builder().code(503).body("{}").build());
        Request models = new Request.Builder().url(url("/v1/models")).header("Authorization", "Bearer " + newKey())
                .build();
        try (Response response = client.newCall(models).execute()) {
            assertThat(response.code()).isEqualTo(503);
            assertThat(response.header("Retry-After")).isNotBlank();
            assertThat(response.body().string()).contains("\"code\":\"upstream_unavailable\"");
        }
    }
}
