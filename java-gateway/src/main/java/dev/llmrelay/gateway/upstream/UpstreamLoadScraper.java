package dev.llmrelay.gateway.upstream;

import java.io.IOException;
import java.time.Duration;
import java.util.Optional;

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
 * Reads every upstream's {@code /metrics} on a schedule of its own (the load changes faster than health)
 * into {@link UpstreamLoad}, which {@link UpstreamPool} routes by. A failed scrape changes nothing: the
 * last load ages out ({@code gateway.routing.metrics-max-age}) and the pool falls back to in-flight counts.
 */
@Component
class UpstreamLoadScraper extends PeriodicTask {

    private static final Logger log = LoggerFactory.getLogger(UpstreamLoadScraper.class);

    private final UpstreamPool pool;
    private final OkHttpClient client;

    UpstreamLoadScraper(UpstreamPool pool, OkHttpClient upstreamHttpClient, GatewayProperties properties) {
        super("upstream-load", properties.routing().scrapeInterval(), "upstream load scraping is off: the pool balances on its own in-flight counts");
        this.pool = pool;
        Duration timeout = properties.routing().scrapeTimeout();
        this.client = upstreamHttpClient.newBuilder()
                .connectTimeout(timeout)
                .callTimeout(timeout)
                .readTimeout(timeout)
                .build();
    }

    @Override
    protected void runOnce() {
        scrapeAll();
    }

    void scrapeAll() {
        for (Upstream upstream : pool.upstreams()) {
            Request request = new Request.Builder().url(upstream.url("/metrics")).get().build();
            client.newCall(request).enqueue(new Callback() {
                @Override
                public void onResponse(Call call, Response response) throws IOException {
                    try (response) {
                        if (response.code() != 200) {
                            log.debug("upstream {}: /metrics answered {}", upstream.name(), response.code());
                            return;
                        }
                        Optional<UpstreamLoad> load = UpstreamLoad.parse(response.body().string(), System.nanoTime());
                        load.ifPresent(upstream::load);
                    }
                }

                @Override
                public void onFailure(Call call, IOException e) {
                    log.debug("upstream {}: /metrics failed: {}", upstream.name(), e.toString());
                }
            });
        }
    }
}
