package dev.llmrelay.gateway.support;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.autoconfigure.actuate.observability.AutoConfigureObservability;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.Environment;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import dev.llmrelay.gateway.GatewayApplication;
import dev.llmrelay.gateway.keys.ApiKeyService;
import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import dev.llmrelay.gateway.upstream.UpstreamPool;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;

/**
 * One real gateway (Spring context, Tomcat on a random port, H2 in memory) in front of two scripted
 * upstreams, shared by the test classes that extend this (one cached context). With the system
 * property {@code gateway.test.db=postgres} (the surefire execution "postgres", which runs the
 * classes tagged {@value #POSTGRES_TAG}) the same context runs on a real PostgreSQL instead.
 */
@Tag(GatewayTestSupport.POSTGRES_TAG)
@AutoConfigureObservability(tracing = false) // Boot tests turn metrics export off unless asked
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
        "spring.datasource.url=jdbc:h2:mem:gateway-test;DB_CLOSE_DELAY=-1",
        "gateway.admin-token=test-admin-token",
        "gateway.upstream-api-key=upstream-secret",
        "gateway.bootstrap-key=sk-relay-bootstrap-for-tests",
        "gateway.cors-origins=http://allowed.example",
        "gateway.health.interval=0",
        "gateway.routing.scrape-interval=0",
        "gateway.timeouts.connect=2s",
        "gateway.timeouts.read=20s",
        "gateway.timeouts.heartbeat=200ms",
        "gateway.breaker.sliding-window-size=4",
        "gateway.breaker.minimum-calls=4",
        "gateway.breaker.failure-rate-percent=50",
        "gateway.breaker.wait-in-open=300ms",
        "gateway.default-max-concurrent-streams=100",
        "logging.level.dev.llmrelay=INFO"})
public abstract class GatewayTestSupport {

    public static final ScriptedUpstream UPSTREAM_A = new ScriptedUpstream();
    public static final ScriptedUpstream UPSTREAM_B = new ScriptedUpstream();
    public static final String POSTGRES_TAG = "postgres";
    /** True in the PostgreSQL run. */
    public static final boolean ON_POSTGRES = "postgres".equals(System.getProperty("gateway.test.db"));
    public static final MediaType JSON = MediaType.get("application/json");

    /** A real page directory, as GATEWAY_WEB_DIR would name it. */
    public static final java.nio.file.Path WEB_DIR = webDir();

    @DynamicPropertySource
    static void upstreams(DynamicPropertyRegistry registry) {
        registry.add("gateway.upstreams", () -> UPSTREAM_A.baseUrl() + "," + UPSTREAM_B.baseUrl());
        registry.add("gateway.web-dir", WEB_DIR::toString);
        if (ON_POSTGRES) {
            registry.add("spring.datasource.url", PostgresServer::jdbcUrl);
            registry.add("spring.datasource.username", PostgresServer::user);
            registry.add("spring.datasource.password", () -> "");
        }
    }

    private static java.nio.file.Path webDir() {
        try {
            java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("gateway-web");
            java.nio.file.Files.writeString(dir.resolve("index.html"), "<!doctype html><title>llm-relay test page</title>");
            java.nio.file.Files.writeString(dir.resolve("app.js"), "console.log('page');");
            dir.toFile().deleteOnExit();
            return dir;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @LocalServerPort
    protected int port;
    @Autowired
    protected ApiKeyService keys;
    @Autowired
    protected UpstreamPool pool;
    @Autowired
    protected JdbcClient jdbc;
    @Autowired
    protected Environment environment;
    @Autowired
    protected dev.llmrelay.gateway.usage.UsageRecorder usageRecorder;

    protected final OkHttpClient client = new OkHttpClient.Builder()
            .readTimeout(30, TimeUnit.SECONDS)
            .build();

    @BeforeEach
    void resetUpstreams() {
        UPSTREAM_A.answer(null);
        UPSTREAM_B.answer(null);
        dev.llmrelay.gateway.upstream.UpstreamStates.reset(pool); // breakers and busy marks of earlier tests
    }

    protected String url(String path) {
        return "http://127.0.0.1:" + port + path;
    }

    /** A fresh key with these limits (each test its own, so limits never leak between tests). */
    protected String newKey(int requestsPerMinute, int tokensPerMinute, int maxStreams) {
        return keys.create(new KeyChanges("test", requestsPerMinute, tokensPerMinute, maxStreams, null)).plaintext();
    }

    protected String newKey() {
        return newKey(1000, 1_000_000, 100);
    }

    protected static String chatBody(boolean stream, String extra) {
        return "{\"model\":\"smollm2\",\"stream\":" + stream + ",\"messages\":[{\"role\":\"user\",\"content\":"
                + "\"Hello there\"}]" + (extra == null ? "" : "," + extra) + "}";
    }

    protected Request.Builder chat(String key, String body, String requestId) {
        Request.Builder request = new Request.Builder().url(url("/v1/chat/completions"))
                .post(RequestBody.create(body, JSON)).header("X-Request-Id", requestId);
        if (key != null) {
            request.header("Authorization", "Bearer " + key);
        }
        return request;
    }

    /**
     * Posts {@code body} to {@code path} as a client that never reads its answer: the connection closes once
     * {@code leaveWhen} opens (raw socket, so nothing reads or retries on the client's behalf).
     */
    protected void postAndLeave(String path, String key, String body, String requestId, CountDownLatch leaveWhen)
            throws IOException, InterruptedException {
        byte[] bytes = body.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        try (java.net.Socket socket = new java.net.Socket("127.0.0.1", port)) {
            java.io.OutputStream out = socket.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key
                    + "\r\nContent-Type: application/json\r\nX-Request-Id: " + requestId + "\r\nContent-Length: "
                    + bytes.length + "\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            out.write(bytes);
            out.flush();
            if (!leaveWhen.await(30, TimeUnit.SECONDS)) {
                throw new AssertionError("the upstream never reached the point where the client leaves");
            }
        }
    }

    /** The SSE lines of a whole response body (blank lines dropped). */
    protected static List<String> lines(Response response) throws IOException {
        List<String> lines = new ArrayList<>();
        BufferedSource source = response.body().source();
        String line;
        while ((line = source.readUtf8Line()) != null) {
            if (!line.isEmpty()) {
                lines.add(line);
            }
        }
        return lines;
    }

    /** Data lines only (no ping comments), with the "data:" prefix removed. */
    protected static List<String> dataEvents(List<String> lines) {
        return lines.stream().filter(l -> l.startsWith("data:")).map(l -> l.substring(5).strip()).toList();
    }

    /**
     * A second gateway (a second application in this JVM, as a second process would be) on this test's
     * database and upstreams, with polling and probes as here; {@code extraArgs} ({@code --name=value})
     * add to or override them. The caller closes it.
     */
    protected ConfigurableApplicationContext startSecondGateway(String... extraArgs) {
        List<String> args = new ArrayList<>(List.of(
                // command-line arguments: they win over application.yml (builder properties would not)
                "--server.port=0",
                "--spring.datasource.url=" + environment.getProperty("spring.datasource.url"),
                "--spring.datasource.username=" + environment.getProperty("spring.datasource.username", "sa"),
                "--spring.datasource.password=" + environment.getProperty("spring.datasource.password", ""),
                "--gateway.admin-token=" + environment.getProperty("gateway.admin-token"),
                "--gateway.upstreams=" + UPSTREAM_A.baseUrl() + "," + UPSTREAM_B.baseUrl(),
                "--gateway.health.interval=0",
                "--gateway.routing.scrape-interval=0",
                "--gateway.default-max-concurrent-streams=100",
                "--gateway.web-dir=",
                "--spring.jmx.enabled=false",
                "--logging.level.root=WARN"));
        args.addAll(List.of(extraArgs));
        return new SpringApplicationBuilder(GatewayApplication.class).run(args.toArray(String[]::new));
    }

    /** Waits for a condition that the system reaches by itself (no timing is asserted). */
    protected static void awaitTrue(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what);
            }
            Thread.sleep(20);
        }
    }

    /** Writes the usage rows recorded so far (they are batched off the request path); always true. */
    protected boolean flushUsage() {
        usageRecorder.flush();
        return true;
    }

    /** The usage row of a request, once written. */
    protected Map<String, Object> usageRow(String requestId) throws InterruptedException {
        awaitTrue("usage row for " + requestId, () -> flushUsage() && jdbc.sql("SELECT COUNT(*) FROM usage_record WHERE request_id = ?")
                .param(requestId).query(Long.class).single() > 0);
        return jdbc.sql("SELECT * FROM usage_record WHERE request_id = ?").param(requestId).query().singleRow();
    }
}
