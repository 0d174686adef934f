package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.junit.jupiter.api.Test;
import org.springframework.test.context.TestPropertySource;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import okhttp3.Response;

/**
 * The breaker's rules with short limits (its own context): a slow-open threshold of 200 ms and a read
 * timeout of 1 s, so that streams outlasting the first and upstreams silent past the second are quick to script.
 */
@TestPropertySource(properties = {"gateway.breaker.slow-open-threshold=200ms", "gateway.timeouts.read=1s"})
class BreakerRulesTest extends GatewayTestSupport {

    @Test
    void scriptedStreamsLongerThanTheSlowThresholdButStartedFastAreNeverSlowCalls() throws Exception {
        Upstream a = pool.upstreams().get(0);
        assertThat(a.breaker().getCircuitBreakerConfig().getSlowCallDurationThreshold())
                .isEqualTo(Duration.ofMillis(200));
        Upstream b = pool.upstreams().get(1);
        b.healthy(false);
        try {
            // each stream opens at once and then takes about 3 x 150 ms: longer than the threshold
            UPSTREAM_A.answer(r -> new SseScript().event(SseScript.chunk("long", "a", null))
                    .pause(Duration.ofMillis(150)).event(SseScript.chunk("long", "b", null))
                    .pause(Duration.ofMillis(150)).event(SseScript.chunk("long", "c", null))
                    .pause(Duration.ofMillis(150)).event(SseScript.chunk("long", null, "stop")).done().response());
            String key = newKey();
            for (int i = 0; i < 6; i++) {
                try (Response response = client.newCall(chat(key, chatBody(true, null), "long-" + i).build())
                        .execute()) {
                    assertThat(response.code()).isEqualTo(200);
                    assertThat(dataEvents(lines(response))).last().isEqualTo("[DONE]");
                }
            }
            // the window (4 calls) holds only these streams, every one a success and none slow
            assertThat(a.breaker().getMetrics().getNumberOfSuccessfulCalls()).isEqualTo(4);
            assertThat(a.breaker().getMetrics().getNumberOfSlowCalls()).isZero();
            assertThat(a.breaker().getState()).isEqualTo(CircuitBreaker.State.CLOSED);
        } finally {
            b.healthy(true);
        }
    }

    @Test
    void scriptedSilentUpstreamGives504NamingTheLimitIsNotRetriedAndIsNoBreakerFailure() throws Exception {
        CountDownLatch never = new CountDownLatch(1);
        // headers go out at once, then nothing: past the 1 s read timeout
        UPSTREAM_A.answer(r -> new SseScript().await(never).event(SseScript.chunk("s", "late", null)).done()
                .response());
        UPSTREAM_B.answer(r -> new SseScript().await(never).event(SseScript.chunk("s", "late", null)).done()
                .response());
        try {
            String key = newKey();
            try (Response response = client.newCall(chat(key, chatBody(false, null), "silent-plain").build())
                    .execute()) {
                assertThat(response.code()).isEqualTo(504);
                String body = response.body().string();
                assertThat(body).contains("\"code\":\"upstream_timeout\"").contains("within 1 s");
            }
            assertThat(usageRow("silent-plain").get("HTTP_STATUS")).isEqualTo(504);
            assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(1);

            try (Response response = client.newCall(chat(key, chatBody(true, null), "silent-stream").build())
                    .execute()) {
                List<String> events = dataEvents(lines(response));
                assertThat(events).hasSize(2);
                assertThat(events.get(0)).contains("\"code\":\"upstream_timeout\"").contains("within 1 s");
                assertThat(events.get(1)).isEqualTo("[DONE]");
            }
            assertThat(UPSTREAM_A.chatRequests() + UPSTREAM_B.chatRequests()).isEqualTo(2);
            for (Upstream upstream : pool.upstreams()) {
                assertThat(upstream.breaker().getMetrics().getNumberOfFailedCalls()).isZero();
                assertThat(upstream.inFlight()).isZero();
            }
        } finally {
            never.countDown();
        }
    }

}
