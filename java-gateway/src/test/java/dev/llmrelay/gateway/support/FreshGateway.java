package dev.llmrelay.gateway.support;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;

import dev.llmrelay.gateway.GatewayApplication;
import dev.llmrelay.gateway.keys.ApiKeyService;
import dev.llmrelay.gateway.keys.ApiKeyService.KeyChanges;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;

/**
 * A gateway of one test's own: fresh scripted upstreams and a fresh application (own H2 database, random
 * port) in front of it, closed with the test. Nothing a test scripts, stores or counts is seen by another,
 * so its asserts can be exact. Probing and scraping are off; the test teaches what it needs.
 *
 * <pre>{@code
 * try (FreshGateway gateway = FreshGateway.start()) {
 *     gateway.upstream().answer(r -> ...);
 *     ... gateway.url("/v1/chat/completions") ...
 * }
 * }</pre>
 */
public final class FreshGateway implements AutoCloseable {

    public static final String ADMIN_TOKEN = "fresh-admin-token";
    private static final MediaType JSON = MediaType.get("application/json");

    private final OkHttpClient client = new OkHttpClient.Builder().readTimeout(30, TimeUnit.SECONDS).build();

    private final List<ScriptedUpstream> upstreams;
    private final ConfigurableApplicationContext context;

    private FreshGateway(List<ScriptedUpstream> upstreams, ConfigurableApplicationContext context) {
        this.upstreams = upstreams;
        this.context = context;
    }

    /** {@code extraArgs} ({@code --name=value}) add to or override the settings here. */
    public static FreshGateway start(String... extraArgs) {
        return start(1, extraArgs);
    }

    /** A gateway in front of {@code replicas} scripted upstreams of its own (one pool). */
    public static FreshGateway start(int replicas, String... extraArgs) {
        return start(java.util.Collections.nCopies(replicas, (String) null), extraArgs);
    }

    /**
     * A gateway in front of one scripted upstream per entry of {@code models}: a model id puts that upstream
     * in the model's own pool ({@code model=url}), null leaves it in the default pool.
     */
    public static FreshGateway startPools(List<String> models, String... extraArgs) {
        return start(models, extraArgs);
    }

    /**
     * As {@link #start(int, String...)}, with {@code beans} registered before the application starts (a test's own
     * span exporter, say).
     */
    public static FreshGateway startWith(int replicas, java.util.Map<String, Object> beans, String... extraArgs) {
        return start(java.util.Collections.nCopies(replicas, (String) null), beans, extraArgs);
    }

    private static FreshGateway start(List<String> models, String... extraArgs) {
        return start(models, java.util.Map.of(), extraArgs);
    }

    private static FreshGateway start(List<String> models, java.util.Map<String, Object> beans, String... extraArgs) {
        List<ScriptedUpstream> upstreams = new ArrayList<>();
        List<String> entries = new ArrayList<>();
        for (String model : models) {
            ScriptedUpstream upstream = new ScriptedUpstream();
            upstreams.add(upstream);
            entries.add(model == null ? upstream.baseUrl() : model + "=" + upstream.baseUrl());
        }
        List<String> args = new ArrayList<>(List.of(
                "--server.port=0",
                "--spring.datasource.url=jdbc:h2:mem:fresh-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1",
                "--gateway.admin-token=" + ADMIN_TOKEN,
                "--gateway.upstreams=" + String.join(",", entries),
                "--gateway.health.interval=0",
                "--gateway.routing.scrape-interval=0",
                "--gateway.policy.poll-interval=0",
                "--gateway.timeouts.read=20s",
                "--gateway.web-dir=",
                "--spring.jmx.enabled=false",
                "--logging.level.root=WARN"));
        for (String extra : extraArgs) {
            // an extra --name=value replaces the default of that name (Spring joins repeated ones into a list)
            String name = extra.split("=", 2)[0] + "=";
            args.removeIf(arg -> arg.startsWith(name));
            args.add(extra);
        }
        ConfigurableApplicationContext context = new SpringApplicationBuilder(GatewayApplication.class)
                .initializers(ctx -> beans.forEach(ctx.getBeanFactory()::registerSingleton))
                .run(args.toArray(String[]::new));
        return new FreshGateway(List.copyOf(upstreams), context);
    }

    /**
     * A JUnit extension that gives each test a gateway of its own, closed after it:
     * {@code @RegisterExtension final FreshGateway.PerTest gateway = FreshGateway.perTest(2);}
     */
    public static PerTest perTest(int replicas, String... extraArgs) {
        return new PerTest(replicas, extraArgs);
    }

    public static final class PerTest implements org.junit.jupiter.api.extension.BeforeEachCallback,
            org.junit.jupiter.api.extension.AfterEachCallback {
        private final int replicas;
        private final String[] extraArgs;
        private FreshGateway current;

        private PerTest(int replicas, String[] extraArgs) {
            this.replicas = replicas;
            this.extraArgs = extraArgs;
        }

        @Override
        public void beforeEach(org.junit.jupiter.api.extension.ExtensionContext context) {
            current = FreshGateway.start(replicas, extraArgs);
        }

        @Override
        public void afterEach(org.junit.jupiter.api.extension.ExtensionContext context) {
            if (current != null) {
                current.close();
                current = null;
            }
        }

        /** This test's gateway. */
        public FreshGateway get() {
            return current;
        }
    }

    /** The first (or only) upstream. */
    public ScriptedUpstream upstream() {
        return upstreams.get(0);
    }

    public ScriptedUpstream upstream(int index) {
        return upstreams.get(index);
    }

    public <T> T bean(Class<T> type) {
        return context.getBean(type);
    }

    public int port() {
        return ((WebServerApplicationContext) context).getWebServer().getPort();
    }

    public String url(String path) {
        return "http://127.0.0.1:" + port() + path;
    }

    /** POST a JSON body with {@code Authorization: Bearer <key>}; the caller closes the response. */
    public Response post(String path, String key, String json) throws IOException {
        return client.newCall(new Request.Builder().url(url(path)).header("Authorization", "Bearer " + key)
                .post(RequestBody.create(json, JSON)).build()).execute();
    }

    /** An admin API call with the admin token; {@code json} null for a call without a body. */
    public Response admin(String method, String path, String json) throws IOException {
        return client.newCall(new Request.Builder().url(url(path)).header("Authorization", "Bearer " + ADMIN_TOKEN)
                .method(method, json == null ? null : RequestBody.create(json, JSON)).build()).execute();
    }

    /** A new API key with these limits; its plaintext. */
    public String newKey(int requestsPerMinute, int tokensPerMinute, int maxStreams) {
        return bean(ApiKeyService.class).create(new KeyChanges("fresh", requestsPerMinute, tokensPerMinute,
                maxStreams, null)).plaintext();
    }

    public String newKey() {
        return newKey(1000, 1_000_000, 100);
    }

    @Override
    public void close() {
        context.close();
        upstreams.forEach(ScriptedUpstream::close);
    }
}
