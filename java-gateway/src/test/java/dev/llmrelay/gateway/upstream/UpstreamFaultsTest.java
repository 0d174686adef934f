package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import mockwebserver3.MockResponse;
import okhttp3.Call;
import okhttp3.Response;
import okio.BufferedSource;

/** Faults injected by scripted upstreams: 503s, dead sockets, connections that drop mid-stream. */
class UpstreamFaultsTest extends GatewayTestSupport {

    private static MockResponse overloaded() {
        return new MockResponse.Builder().code(503).setHeader("Content-Type", "application/json")
                .setHeader("Retry-After", "7")
                .body("{\"error\":{\"message\":\"queue full\",\"type\":\"server_error\",\"param\":null,"
                        + "\"code\":\"overloaded\"}}")
                .build();
    }

    @Test
    void noUpstreamAbleToServeGives503WithRetryAfterAndOneErrorEventThenDone() throws Exception {
        UPSTREAM_A.answer(r -> overloaded());
        UPSTREAM_B.answer(r -> overloaded());
        try (Response response = client.newCall(chat(newKey(), chatBody(true, null), "none-left").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(503);
            assertThat(response.header("Retry-After")).isEqualTo("7"); // the upstreams' own wait, passed on
            assertThat(response.header("Content-Type")).startsWith("text/event-stream");
            List<String> events = dataEvents(lines(response));
            assertThat(events).hasSize(2);
            assertThat(events.get(0)).contains("\"code\":\"upstream_unavailable\"").contains("\"message\"");
            assertThat(events.get(1)).isEqualTo("[DONE]");
        }
        assertThat(usageRow("none-left").get("END_REASON")).isEqualTo("upstream_error");

        try (Response response = client.newCall(chat(newKey(), chatBody(false, null), "none-left-plain").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(503);
            assertThat(response.header("Retry-After")).isEqualTo("7");
            assertThat(response.body().string()).contains("\"error\"").contains("upstream_unavailable");
        }
    }

    @Test
    void upstream4xxPassesThroughUnchanged() throws Exception {
        String body = "{\"error\":{\"message\":\"prompt (900 tokens) + max_tokens (300) exceeds 1024\","
                + "\"type\":\"invalid_request_error\",\"param\":\"max_tokens\",\"code\":\"context_length_exceeded\"}}";
        UPSTREAM_A.answer(r -> new MockResponse.Builder().code(400).setHeader("Content-Type", "application/json")
                .body(body).build());
        UPSTREAM_B.answer(r -> new MockResponse.Builder().code(400).setHeader("Content-Type", "application/json")
                .body(body).build());
        for (boolean stream : new boolean[] {true, false}) {
            try (Response response = client.newCall(chat(newKey(), chatBody(stream, null), "pass-4xx-" + stream)
                    .build()).execute()) {
                assertThat(response.code()).isEqualTo(400);
                assertThat(response.header("Content-Type")).startsWith("application/json");
                assertThat(response.body().string()).isEqualTo(body);
            }
        }
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(2); // never retried
    }

    @Test
    void scriptedUpstreamDyingMidStreamGivesAnErrorEventThenDoneAndBillsWhatWasRelayed() throws Exception {
        var script = new SseScript().event(SseScript.chunk("d1", "partial", null))
                .event(SseScript.chunk("d1", " answer", null)).die();
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());

        try (Response response = client.newCall(chat(newKey(), chatBody(true, null), "dies-mid").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200);
            List<String> events = dataEvents(lines(response));
            assertThat(events).hasSize(4);
            assertThat(events.get(0)).isEqualTo(SseScript.chunk("d1", "partial", null));
            assertThat(events.get(1)).isEqualTo(SseScript.chunk("d1", " answer", null));
            assertThat(events.get(2)).contains("\"error\"").contains("\"code\":\"upstream_error\"");
            assertThat(events.get(3)).isEqualTo("[DONE]");
        }
        Map<String, Object> row = usageRow("dies-mid");
        assertThat(row.get("END_REASON")).isEqualTo("upstream_error");
        assertThat(row.get("COMPLETION_TOKENS")).isEqualTo(2);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("counted");
        // a stream that already reached the client is never retried elsewhere
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(1);
    }

    @Test
    void breakerOpensAfterScriptedFailuresAndClosesAfterRecovery() throws Exception {
        Upstream a = pool.upstreams().get(0);
        Upstream b = pool.upstreams().get(1);
        // B is the only healthy-looking one for this test's requests: take it out via its probe state
        b.healthy(false);
        try {
            UPSTREAM_A.answer(r -> new MockResponse.Builder().code(500).body("{}").build());
            String key = newKey();
            // window 4, minimum 4 calls, 50%: four failures open the breaker
            for (int i = 0; i < 4; i++) {
                try (Response response = client.newCall(chat(key, chatBody(false, null), "brk-" + i).build())
                        .execute()) {
                    assertThat(response.code()).isEqualTo(503);
                }
            }
            assertThat(a.breaker().getState()).isEqualTo(CircuitBreaker.State.OPEN);
            long callsWhileOpen = UPSTREAM_A.chatRequests();
            try (Response response = client.newCall(chat(key, chatBody(false, null), "brk-open").build()).execute()) {
                assertThat(response.code()).isEqualTo(503);
                assertThat(response.header("Retry-After")).isNotBlank();
            }
            assertThat(UPSTREAM_A.chatRequests()).isEqualTo(callsWhileOpen); // short-circuited: no call made

            // the upstream recovers; after the open wait one trial call goes through and closes the breaker
            UPSTREAM_A.answer(r -> SseScript.answer("b1", 4, "back").response());
            awaitTrue("breaker lets a trial call through", () -> {
                try (Response response = client.newCall(chat(key, chatBody(true, null), "brk-trial").build())
                        .execute()) {
                    return response.code() == 200 && dataEvents(lines(response)).contains("[DONE]");
                } catch (Exception e) {
                    return false;
                }
            });
            assertThat(a.breaker().getState()).isEqualTo(CircuitBreaker.State.CLOSED);
        } finally {
            b.healthy(true);
        }
    }

    @Test
    void clientDisconnectCancelsTheUpstreamCallAndBillsWhatWasRelayed() throws Exception {
        var script = new SseScript().tokensUntilClosed("cx");
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());

        Call call = client.newCall(chat(newKey(), chatBody(true, null), "client-leaves").build());
        Response response = call.execute();
        BufferedSource source = response.body().source();
        int seen = 0;
        while (seen < 3) {
            String line = source.readUtf8Line();
            if (line != null && line.startsWith("data:")) {
                seen++;
            }
        }
        call.cancel(); // the client goes away mid-stream
        response.close();

        assertThat(script.upstreamSocketClosed.await(30, TimeUnit.SECONDS))
                .as("the upstream sees its connection closed").isTrue();
        Map<String, Object> row = usageRow("client-leaves");
        assertThat(row.get("END_REASON")).isEqualTo("client_cancelled");
        assertThat((Integer) row.get("COMPLETION_TOKENS")).isGreaterThanOrEqualTo(3);
        assertThat(row.get("USAGE_SOURCE")).isEqualTo("counted");
    }

    @Test
    void slowPrefillClientLeavingIsFoundByHeartbeatAndUpstreamCancelled() throws Exception {
        CountDownLatch never = new CountDownLatch(1);
        var script = new SseScript().await(never).event(SseScript.chunk("p1", "late", null)).done();
        UPSTREAM_A.answer(r -> script.response());
        UPSTREAM_B.answer(r -> script.response());
        try {
            Call call = client.newCall(chat(newKey(), chatBody(true, null), "prefill-leaves").build());
            Response response = call.execute();
            BufferedSource source = response.body().source();
            String line;
            do {
                line = source.readUtf8Line(); // the upstream is silent; only heartbeats arrive
            } while (line != null && !line.startsWith(":"));
            assertThat(line).isEqualTo(": ping");
            call.cancel();
            response.close();
            assertThat(usageRow("prefill-leaves").get("END_REASON")).isEqualTo("client_cancelled");
            awaitTrue("upstream call released", () -> pool.upstreams().stream().allMatch(u -> u.inFlight() == 0));
        } finally {
            never.countDown();
        }
    }
    @Test
    void scriptedHalfOpenTrialStreamIsJudgedByItsFirstEventSoOthersAreServedWhileItRuns() throws Exception {
        Upstream a = pool.upstreams().get(0);
        Upstream b = pool.upstreams().get(1);
        b.healthy(false);
        CountDownLatch endTrial = new CountDownLatch(1);
        try {
            a.breaker().transitionToOpenState();
            a.breaker().transitionToHalfOpenState(); // one trial call allowed (gateway.breaker.half-open-calls)
            SseScript trial = new SseScript().event(SseScript.chunk("trial", "first", null)).await(endTrial)
                    .event(SseScript.chunk("trial", null, "stop")).done();
            UPSTREAM_A.answer(r -> trial.response());
            String key = newKey();
            try (Response running = client.newCall(chat(key, chatBody(true, null), "trial").build()).execute()) {
                assertThat(running.code()).isEqualTo(200);
                assertThat(running.body().source().readUtf8Line()).isEqualTo("data: " + SseScript.chunk("trial",
                        "first", null));
                // the trial stream started well: the breaker closed, though the stream is still running
                awaitTrue("breaker closed", () -> a.breaker().getState() == CircuitBreaker.State.CLOSED);
                UPSTREAM_A.answer(r -> SseScript.answer("other", 3, "ok").response());
                try (Response other = client.newCall(chat(key, chatBody(false, null), "beside-trial").build())
                        .execute()) {
                    assertThat(other.code()).isEqualTo(200);
                }
                endTrial.countDown();
                assertThat(dataEvents(lines(running))).last().isEqualTo("[DONE]");
            }
            assertThat(a.inFlight()).isZero();
            assertThat(a.breaker().getMetrics().getNumberOfFailedCalls()).isZero();
        } finally {
            endTrial.countDown();
            b.healthy(true);
        }
    }

    @Test
    void scriptedGenerationFailureTheRequestCausedIsPassedOnNotRetriedAndNoBreakerFailure() throws Exception {
        String event = "{\"error\":{\"message\":\"sampling failed for this request\",\"type\":"
                + "\"invalid_request_error\",\"param\":null,\"code\":\"request_generation_failed\"}}";
        SseScript midStream = new SseScript().event(SseScript.chunk("r1", "partial", null)).event(event);
        SseScript atOnce = new SseScript().event(event);
        String key = newKey();

        UPSTREAM_A.answer(r -> midStream.response());
        UPSTREAM_B.answer(r -> midStream.response());
        try (Response response = client.newCall(chat(key, chatBody(true, null), "req-fault-mid").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200);
            assertThat(dataEvents(lines(response))).containsExactly(SseScript.chunk("r1", "partial", null), event,
                    "[DONE]");
        }
        try (Response response = client.newCall(chat(key, chatBody(false, null), "req-fault-mid-plain").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(422);
            assertThat(response.body().string()).isEqualTo(event);
        }
        UPSTREAM_A.answer(r -> atOnce.response());
        UPSTREAM_B.answer(r -> atOnce.response());
        try (Response response = client.newCall(chat(key, chatBody(true, null), "req-fault-first").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(200); // a stream's status went out when the upstream opened
            assertThat(dataEvents(lines(response))).containsExactly(event, "[DONE]");
        }
        try (Response response = client.newCall(chat(key, chatBody(false, null), "req-fault-first-plain").build())
                .execute()) {
            assertThat(response.code()).isEqualTo(422);
            assertThat(response.body().string()).isEqualTo(event);
        }
        assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(2); // never retried
        for (Upstream upstream : pool.upstreams()) {
            assertThat(upstream.breaker().getMetrics().getNumberOfFailedCalls()).isZero();
            assertThat(upstream.inFlight()).isZero();
        }
    }
}
