package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import okhttp3.ConnectionPool;
import okhttp3.OkHttpClient;
import okhttp3.Response;

class ConcurrentStreamsTest extends GatewayTestSupport {

    static final int STREAMS = 50;

    @Test
    void fiftyStreamsAreAllInFlightAtOnceThroughOneUpstreamHost() throws Exception {
        Upstream b = pool.upstreams().get(1);
        b.healthy(false); // every stream must go to upstream A
        CountDownLatch allStarted = new CountDownLatch(STREAMS);
        // each upstream stream sends one event, then waits until all 50 are open at the same time
        UPSTREAM_A.answer(r -> new SseScript().event(SseScript.chunk("m", "first", null))
                .countDownAndAwait(allStarted)
                .event(SseScript.chunk("m", "second", null)).event(SseScript.chunk("m", null, "stop")).done()
                .response());
        String key = newKey(1000, 10_000_000, STREAMS);
        OkHttpClient clients = client.newBuilder().connectionPool(new ConnectionPool(STREAMS, 1, TimeUnit.MINUTES))
                .build();
        ExecutorService threads = Executors.newFixedThreadPool(STREAMS);
        try {
            List<Future<List<String>>> results = new ArrayList<>();
            for (int i = 0; i < STREAMS; i++) {
                String id = "many-" + i;
                results.add(threads.submit(() -> {
                    try (Response response = clients.newCall(chat(key, chatBody(true, null), id).build()).execute()) {
                        assertThat(response.code()).isEqualTo(200);
                        return dataEvents(lines(response));
                    }
                }));
            }
            assertThat(allStarted.await(60, TimeUnit.SECONDS)).as("all 50 upstream streams open together").isTrue();
            for (Future<List<String>> result : results) {
                assertThat(result.get(60, TimeUnit.SECONDS)).containsExactly(SseScript.chunk("m", "first", null),
                        SseScript.chunk("m", "second", null), SseScript.chunk("m", null, "stop"), "[DONE]");
            }
            assertThat(UPSTREAM_A.chatRequests()).isEqualTo(STREAMS);
            assertThat(UPSTREAM_B.chatRequests()).isZero();
        } finally {
            threads.shutdownNow();
            b.healthy(true);
        }
    }
}
