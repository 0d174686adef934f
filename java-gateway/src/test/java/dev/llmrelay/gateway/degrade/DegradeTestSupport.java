package dev.llmrelay.gateway.degrade;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.conversation.BrowserHttp;
import dev.llmrelay.gateway.keys.ApiKeyService;
import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.PostgresServer;
import dev.llmrelay.gateway.support.ScriptedUpstream;
import dev.llmrelay.gateway.support.SseScript;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import mockwebserver3.MockResponse;
import okhttp3.ConnectionPool;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * One gateway for the degradation tests: a default pool (one scripted upstream, for requests naming
 * {@code smollm2} and for the browser API) and a pool of its own for the model {@code small} (another
 * scripted upstream). Every pool's concurrency limit is pinned to {@value #LIMIT} (min = max), so how
 * many requests are admitted is exact. Each test starts with no stored switches or routes. In the
 * "postgres" surefire run it runs on a real PostgreSQL (as {@link GatewayTestSupport} does).
 */
@Tag(GatewayTestSupport.POSTGRES_TAG) // again on PostgreSQL in the "postgres" run
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
        "spring.datasource.url=jdbc:h2:mem:degrade;DB_CLOSE_DELAY=-1",
        "gateway.admin-token=degrade-admin",
        "gateway.web-dir=",
        "gateway.health.interval=0",
        "gateway.routing.scrape-interval=0",
        "gateway.timeouts.read=20s",
        "gateway.default-max-concurrent-streams=100",
        "gateway.degrade.adaptive-limit=true",
        "gateway.degrade.initial-limit=" + DegradeTestSupport.LIMIT,
        "gateway.degrade.min-limit=" + DegradeTestSupport.LIMIT,
        "gateway.degrade.max-limit=" + DegradeTestSupport.LIMIT})
abstract class DegradeTestSupport {

    static final int LIMIT = 4;
    static final String ADMIN = "degrade-admin";
    static final ScriptedUpstream PRIMARY = new ScriptedUpstream();
    static final ScriptedUpstream SMALL = new ScriptedUpstream();
    static final MediaType JSON = MediaType.get("application/json");

    @DynamicPropertySource
    static void upstreams(DynamicPropertyRegistry registry) {
        registry.add("gateway.upstreams", () -> PRIMARY.baseUrl() + ",small=" + SMALL.baseUrl());
        if (GatewayTestSupport.ON_POSTGRES) {
            registry.add("spring.datasource.url", PostgresServer::jdbcUrl);
            registry.add("spring.datasource.username", PostgresServer::user);
            registry.add("spring.datasource.password", () -> "");
        }
    }

    @LocalServerPort
    int port;
    @Autowired
    ApiKeyService keys;
    @Autowired
    UpstreamPool pool;
    @Autowired
    JdbcClient jdbc;
    @Autowired
    dev.llmrelay.gateway.usage.UsageRecorder usageRecorder;
    @Autowired
    PolicySource policy;

    final ObjectMapper json = new ObjectMapper();
    final OkHttpClient client = new OkHttpClient.Builder().readTimeout(30, TimeUnit.SECONDS)
            .connectionPool(new ConnectionPool(50, 1, TimeUnit.MINUTES)).build();

    @BeforeEach
    @AfterEach
    void clearPolicy() {
        policy.change(() -> jdbc.sql("DELETE FROM degrade_setting").update());
        PRIMARY.answer(request -> answer("smollm2", "Hi"));
        SMALL.answer(request -> answer("small", "Hello"));
        dev.llmrelay.gateway.upstream.UpstreamStates.reset(pool);
    }

    /** A complete scripted answer whose chunks name {@code model}, as the model-service serving it would. */
    static MockResponse answer(String model, String token) {
        return script(model, token).response();
    }

    static SseScript script(String model, String token) {
        return script(new SseScript(), model, token);
    }

    /** An answer that starts only when {@code release} opens: a model busy with earlier work. */
    static MockResponse heldAnswer(java.util.concurrent.CountDownLatch release, String model, String token) {
        return script(new SseScript().await(release), model, token).response();
    }

    private static SseScript script(SseScript script, String model, String token) {
        script.event(named(SseScript.chunk("c1", token, null), model))
                .event(named(SseScript.chunk("c1", null, "stop"), model))
                .event(named(SseScript.usageChunk("c1", 3, 1), model)).done();
        return script;
    }

    static String named(String chunk, String model) {
        return chunk.replace("\"model\":\"smollm2\"", "\"model\":\"" + model + "\"");
    }

    String url(String path) {
        return "http://127.0.0.1:" + port + path;
    }

    String newKey(boolean allowFallback) {
        return keys.create(new KeyChanges("degrade", 100_000, 100_000_000, 100, null, allowFallback)).plaintext();
    }

    Response chat(String key, String model, boolean stream, String extra) throws IOException {
        String body = "{\"model\":\"" + model + "\",\"stream\":" + stream
                + ",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]" + (extra == null ? "" : "," + extra) + "}";
        return client.newCall(new Request.Builder().url(url("/v1/chat/completions"))
                .header("Authorization", "Bearer " + key).post(RequestBody.create(body, JSON)).build()).execute();
    }

    Response patchPolicy(String body) throws IOException {
        return client.newCall(new Request.Builder().url(url("/admin/degradation"))
                .header("Authorization", "Bearer " + ADMIN)
                .patch(RequestBody.create(body, JSON)).build()).execute();
    }

    JsonNode getPolicy() throws IOException {
        try (Response response = client.newCall(new Request.Builder().url(url("/admin/degradation"))
                .header("Authorization", "Bearer " + ADMIN).build()).execute()) {
            assertThat(response.code()).isEqualTo(200);
            return json.readTree(response.body().string());
        }
    }

    void setPolicy(String body) throws IOException {
        try (Response response = patchPolicy(body)) {
            assertThat(response.code()).as(response.peekBody(4096).string()).isEqualTo(200);
        }
    }

    /** A browser session cookie for {@code key}. */
    String signIn(String key) throws Exception {
        return new BrowserHttp(port).signIn(key);
    }

    /** POST /api/chat/messages: a new conversation when {@code conversationId} is null. */
    HttpResponse<String> sendMessage(String cookie, String conversationId, String content) throws Exception {
        String body = conversationId == null ? "{\"content\":\"" + content + "\"}"
                : "{\"conversationId\":\"" + conversationId + "\",\"content\":\"" + content + "\"}";
        return new BrowserHttp(port).post("/api/chat/messages", body, cookie);
    }

    Upstream primaryUpstream() {
        return pool.upstreams().stream().filter(u -> u.model() == null).findFirst().orElseThrow();
    }
}
