package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.support.FreshGateway;
import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import mockwebserver3.MockResponse;
import okhttp3.Request;
import okhttp3.Response;

/**
 * What is not an upstream fault, injected by scripted upstreams: a replica refusing with 503 + Retry-After
 * (busy) and a 5xx that the request itself causes on every replica. Neither may open a breaker.
 */
class UpstreamBusyAndRequestFaultTest extends GatewayTestSupport {

    private static final String GENERATION_ERROR = "{\"error\":{\"message\":\"generation failed\",\"type\":"
            + "\"server_error\",\"param\":null,\"code\":\"generation_error\"}}";

    private static MockResponse busy() {
        return new MockResponse.Builder().code(503).setHeader("Content-Type", "application/json")
                .setHeader("Retry-After", "7")
                .body("{\"error\":{\"message\":\"queue full\",\"type\":\"server_error\",\"param\":null,"
                        + "\"code\":\"queue_full\"}}")
                .build();
    }

    private static MockResponse generationError() {
        return new MockResponse.Builder().code(500).setHeader("Content-Type", "application/json")
                .body(GENERATION_ERROR).build();
    }

    private void assertNoBreakerFailures() {
        for (Upstream upstream : pool.upstreams()) {
            assertThat(upstream.breaker().getState()).isEqualTo(CircuitBreaker.State.CLOSED);
            assertThat(upstream.breaker().getMetrics().getNumberOfFailedCalls()).isZero();
        }
    }

    @Test
    void scriptedReplicaRefusing15Of20ConcurrentStreamsAsBusyKeepsItsBreakerClosed() throws Exception {
        Upstream b = pool.upstreams().get(1);
        b.healthy(false); // one replica only
        CountDownLatch refusedAll = new CountDownLatch(15);
        AtomicInteger arrivals = new AtomicInteger();
        UPSTREAM_A.answer(r -> arrivals.incrementAndGet() <= 5
                ? new SseScript().await(refusedAll).event(SseScript.chunk("q", "served", null))
                        .event(SseScript.chunk("q", null, "stop")).done().response()
                : refuse(refusedAll));
        ExecutorService clients = Executors.newFixedThreadPool(20);
        try {
            String key = newKey();
            List<Future<String>> answers = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                Request request = chat(key, chatBody(true, null), "burst-" + i).build();
                answers.add(clients.submit(() -> {
                    try (Response response = client.newCall(request).execute()) {
                        List<String> events = dataEvents(lines(response));
                        return response.code() + " " + response.header("Retry-After") + " "
                                + events.get(0).contains("upstream_unavailable") + " " + events.get(events.size() - 1);
                    }
                }));
            }
            List<String> outcomes = new ArrayList<>();
            for (Future<String> answer : answers) {
                outcomes.add(answer.get(60, TimeUnit.SECONDS));
            }
            assertThat(outcomes).filteredOn(o -> o.equals("200 null false [DONE]")).hasSize(5);
            assertThat(outcomes).filteredOn(o -> o.equals("503 7 true [DONE]")).hasSize(15);
            assertNoBreakerFailures();

            UPSTREAM_A.answer(r -> SseScript.answer("n", 3, "next").response());
            try (Response response = client.newCall(chat(key, chatBody(true, null), "after-burst").build())
                    .execute()) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(dataEvents(lines(response))).last().isEqualTo("[DONE]");
            }
            assertThat(UPSTREAM_A.chatRequests()).isEqualTo(1);
        } finally {
            clients.shutdownNow();
            b.healthy(true);
        }
    }

    private static MockResponse refuse(CountDownLatch refused) {
        refused.countDown();
        return busy();
    }

    @Test
    void scriptedBusyReplicasPassTheirRetryAfterOnForNonStreamAndModelsWithoutBreakerFailures() throws Exception {
        UPSTREAM_A.answer(r -> busy());
        UPSTREAM_B.answer(r -> busy());
        String key = newKey();
        for (int i = 0; i < 3; i++) {
            try (Response response = client.newCall(chat(key, chatBody(false, null), "busy-plain-" + i).build())
                    .execute()) {
                assertThat(response.code()).isEqualTo(503);
                assertThat(response.header("Retry-After")).isEqualTo("7");
                assertThat(response.body().string()).contains("\"code\":\"upstream_unavailable\"").contains("busy");
            }
            try (Response response = client.newCall(new Request.Builder().url(url("/v1/models"))
                    .header("Authorization", "Bearer " + key).build()).execute()) {
                assertThat(response.code()).isEqualTo(503);
                assertThat(response.header("Retry-After")).isEqualTo("7");
                assertThat(response.body().string()).contains("\"code\":\"upstream_unavailable\"").contains("busy");
            }
        }
        assertNoBreakerFailures();
    }

    @Test
    void scripted500ThatRepeatsOnTheSecondReplicaIsTheRequestsFaultPassedOnAndNeverTripsTheBreaker()
            throws Exception {
        UPSTREAM_A.answer(r -> generationError());
        UPSTREAM_B.answer(r -> generationError());
        String key = newKey();
        for (int i = 0; i < 7; i++) {
            boolean stream = i % 2 == 0;
            try (Response response = client.newCall(chat(key, chatBody(stream, null), "poison-" + i).build())
                    .execute()) {
                assertThat(response.code()).isEqualTo(500);
                if (stream) {
                    List<String> events = dataEvents(lines(response));
                    assertThat(events.get(0)).contains("\"code\":\"generation_error\"")
                            .contains("generation failed");
                    assertThat(events.get(1)).isEqualTo("[DONE]");
                } else {
                    assertThat(response.body().string()).isEqualTo(GENERATION_ERROR);
                }
            }
        }
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(14); // each tried twice
        assertNoBreakerFailures();
    }

    @Test
    void scriptedErrorEventBeforeAnyContentOnBothReplicasIsTheRequestsFault() throws Exception {
        String errorEvent = GENERATION_ERROR;
        UPSTREAM_A.answer(r -> new SseScript().event(errorEvent).done().response());
        UPSTREAM_B.answer(r -> new SseScript().event(errorEvent).done().response());
        String key = newKey();
        for (int i = 0; i < 5; i++) {
            try (Response response = client.newCall(chat(key, chatBody(true, null), "poison-ev-" + i).build())
                    .execute()) {
                List<String> events = dataEvents(lines(response));
                assertThat(events).hasSize(2);
                assertThat(events.get(0)).contains("\"code\":\"generation_error\"");
                assertThat(events.get(1)).isEqualTo("[DONE]");
            }
        }
        assertNoBreakerFailures();
    }

    @Test
    void scripted500OnOneReplicaOnlyIsThatReplicasFailure() throws Exception {
        // a pool of its own: which replica a request tries first depends on the rotation, which the shared
        // gateway's other tests move
        try (FreshGateway gateway = FreshGateway.start(2)) {
            gateway.upstream(0).answer(r -> generationError());
            gateway.upstream(1).answer(r -> SseScript.answer("ok", 3, "fine").response());
            Upstream a = gateway.bean(UpstreamPool.class).upstreams().get(0);
            String key = gateway.newKey();
            // both requests try A first (a fresh rotation, and each one's retry at B takes the turn between):
            // A fails, B serves, so each 500 was A's
            for (int i = 0; i < 2; i++) {
                try (Response response = gateway.post("/v1/chat/completions", key, chatBody(true, null))) {
                    assertThat(response.code()).isEqualTo(200);
                    assertThat(dataEvents(lines(response))).last().isEqualTo("[DONE]");
                }
            }
            assertThat(gateway.upstream(0).chatRequests()).isEqualTo(2);
            assertThat(a.breaker().getMetrics().getNumberOfFailedCalls()).isEqualTo(2);
            assertThat(gateway.upstream(1).chatRequests()).isEqualTo(2);
        }
    }

    @Test
    void openBreakerSaysTheUpstreamIsRefusingAfterRecentFailures() throws Exception {
        for (Upstream upstream : pool.upstreams()) {
            upstream.breaker().transitionToOpenState();
        }
        try (Response response = client.newCall(chat(newKey(), chatBody(false, null), "open-msg").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(503);
            assertThat(response.header("Retry-After")).isNotBlank();
            String body = response.body().string();
            assertThat(body).contains("refusing calls after recent failures").doesNotContain("healthy");
        }
    }
}
