package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.SseScript;
import mockwebserver3.MockResponse;
import okhttp3.Request;
import okhttp3.Response;

/** Active /health probing; the scheduler is off in tests, so the test runs one probe round itself. */
class UpstreamHealthProbeTest extends GatewayTestSupport {

    @Autowired
    UpstreamHealthProber prober;

    @Test
    void upstreamAnswering503OnHealthGetsNoStreamsUntilItIsReadyAgain() throws Exception {
        Upstream a = pool.upstreams().get(0);
        Upstream b = pool.upstreams().get(1);
        UPSTREAM_A.answer(r -> r.getUrl().encodedPath().equals("/health")
                ? new MockResponse.Builder().body("{\"status\":\"ready\",\"model\":\"smollm2\"}").build()
                : SseScript.answer("h", 2, "fine").response());
        UPSTREAM_B.answer(r -> r.getUrl().encodedPath().equals("/health")
                ? new MockResponse.Builder().code(503).body("{\"status\":\"loading\"}").build()
                : SseScript.answer("h", 2, "fine").response());
        try {
            prober.probeAll();
            awaitTrue("B marked unhealthy", () -> !b.healthy());
            assertThat(a.healthy()).isTrue();
            String key = newKey();
            for (int i = 0; i < 4; i++) {
                try (Response response = client.newCall(chat(key, chatBody(true, null), "probe-" + i).build())
                        .execute()) {
                    assertThat(dataEvents(lines(response))).last().isEqualTo("[DONE]");
                }
            }
            assertThat(UPSTREAM_B.chatRequests()).isZero();
            assertThat(UPSTREAM_A.chatRequests()).isEqualTo(4);

            try (Response metrics = client.newCall(new Request.Builder().url(url("/actuator/prometheus")).build())
                    .execute()) {
                String text = metrics.body().string();
                assertThat(text).contains("gateway_upstream_healthy{").contains("gateway_upstream_in_flight{")
                        .contains("resilience4j_circuitbreaker_state{").contains("gateway_streams_active")
                        .contains("gateway_requests_total{").contains("gateway_ttft_seconds_bucket{");
            }

            UPSTREAM_B.answer(r -> new MockResponse.Builder().body("{\"status\":\"ready\"}").build());
            prober.probeAll();
            awaitTrue("B healthy again", b::healthy);
        } finally {
            a.healthy(true);
            b.healthy(true);
        }
    }
}
