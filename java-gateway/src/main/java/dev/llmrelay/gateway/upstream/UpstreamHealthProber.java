package dev.llmrelay.gateway.upstream;

import java.io.IOException;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * Asks every upstream's {@code /health} on a schedule; only a 200 counts as healthy. A healthy upstream is
 * then asked for its {@code /v1/models} (context lengths, {@link UpstreamModels}).
 */
@Component
class UpstreamHealthProber extends PeriodicTask {

    private static final Logger log = LoggerFactory.getLogger(UpstreamHealthProber.class);

    private final UpstreamPool pool;
    private final UpstreamModels models;
    private final OkHttpClient client;

    UpstreamHealthProber(UpstreamPool pool, UpstreamModels models, OkHttpClient upstreamHttpClient,
            GatewayProperties properties) {
        super("upstream-health", properties.health().interval(), "upstream health probing is off");
        this.pool = pool;
        this.models = models;
        this.client = upstreamHttpClient.newBuilder()
                .callTimeout(properties.health().timeout())
                .readTimeout(properties.health().timeout())
                .build();
    }

    @Override
    protected void runOnce() {
        probeAll();
    }

    void probeAll() {
        for (Upstream upstream : pool.upstreams()) {
            Request request = new Request.Builder().url(upstream.url("/health")).get().build();
            client.newCall(request).enqueue(new Callback() {
                @Override
                public void onResponse(Call call, Response response) {
                    try (response) {
                        mark(upstream, response.code() == 200, "HTTP " + response.code());
                    }
                    if (response.code() == 200) {
                        listModels(upstream);
                    }
                }

                @Override
                public void onFailure(Call call, IOException e) {
                    mark(upstream, false, e.toString());
                }
            });
        }
    }

    private void listModels(Upstream upstream) {
        Request request = new Request.Builder().url(upstream.url("/v1/models")).get().build();
        client.newCall(request).enqueue(new Callback() {
            @Override
            public void onResponse(Call call, Response response) throws IOException {
                try (response) {
                    if (response.code() == 200) {
                        models.learn(upstream, response.body().string());
                    }
                }
            }

            @Override
            public void onFailure(Call call, IOException e) {
                log.debug("upstream {}: /v1/models failed: {}", upstream.name(), e.toString());
            }
        });
    }

    private static void mark(Upstream upstream, boolean healthy, String why) {
        if (upstream.healthy() != healthy) {
            log.info("upstream {} is now {} ({})", upstream.name(), healthy ? "healthy" : "unhealthy", why);
        }
        upstream.healthy(healthy);
    }
}
