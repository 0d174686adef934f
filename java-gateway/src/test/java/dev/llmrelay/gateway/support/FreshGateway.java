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
 * A gateway of one test's own: a fresh scripted upstream and a fresh application (own H2 database, random
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

    private final ScriptedUpstream upstream;
    private final ConfigurableApplicationContext context;

    private FreshGateway(ScriptedUpstream upstream, ConfigurableApplicationContext context) {
        this.upstream = upstream;
        this.context = context;
    }

    /** {@code extraArgs} ({@code --name=value}) add to or override the settings here. */
    public static FreshGateway start(String... extraArgs) {
        ScriptedUpstream upstream = new ScriptedUpstream();
        List<String> args = new ArrayList<>(List.of(
                "--server.port=0",
                "--spring.datasource.url=jdbc:h2:mem:fresh-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1",
                "--gateway.admin-token=" + ADMIN_TOKEN,
                "--gateway.upstreams=" + upstream.baseUrl(),
                "--gateway.health.interval=0",
                "--gateway.routing.scrape-interval=0",
                "--gateway.policy.poll-interval=0",
                "--gateway.timeouts.read=20s",
                "--gateway.web-dir=",
                "--spring.jmx.enabled=false",
                "--logging.level.root=WARN"));
        args.addAll(List.of(extraArgs));
        ConfigurableApplicationContext context = new SpringApplicationBuilder(GatewayApplication.class)
                .run(args.toArray(String[]::new));
        return new FreshGateway(upstream, context);
    }

    public ScriptedUpstream upstream() {
        return upstream;
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
        upstream.close();
    }
}
