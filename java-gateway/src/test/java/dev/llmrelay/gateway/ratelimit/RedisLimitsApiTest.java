package dev.llmrelay.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.RedisServer;
import dev.llmrelay.gateway.support.SseScript;
import okhttp3.Response;

/** The real gateway with GATEWAY_LIMITS_STORE=redis (fail-closed) on a real redis-server, on /v1. */
@DirtiesContext // its Redis stops after this class: do not leave a cached context reconnecting to it
class RedisLimitsApiTest extends GatewayTestSupport {

    @RegisterExtension
    static final RedisServer REDIS = new RedisServer();

    @DynamicPropertySource
    static void redis(DynamicPropertyRegistry registry) {
        registry.add("gateway.limits.store", () -> "redis");
        registry.add("gateway.limits.on-store-failure", () -> "fail-closed");
        registry.add("gateway.redis.url", REDIS::url);
        registry.add("gateway.redis.timeout", () -> "300ms");
    }

    @Autowired
    LimitStore store;

    @Test
    void limitsLiveInRedisAndAnOutageAnswers503WithRetryAfterNever500() throws Exception {
        assertThat(store).isInstanceOf(RedisLimitStore.class);
        UPSTREAM_A.answer(r -> SseScript.answer("r", 3, "hi").response());
        UPSTREAM_B.answer(r -> SseScript.answer("r", 3, "hi").response());
        String key = newKey(2, 1_000_000, 10);
        for (int i = 1; i <= 2; i++) {
            try (Response response = client.newCall(chat(key, chatBody(false, null), "redis-" + i).build()).execute()) {
                assertThat(response.code()).isEqualTo(200);
                assertThat(response.header("X-RateLimit-Remaining")).isEqualTo(Integer.toString(2 - i));
            }
        }
        try (Response response = client.newCall(chat(key, chatBody(false, null), "redis-3").build()).execute()) {
            assertThat(response.code()).isEqualTo(429);
        }

        String other = newKey(100, 1_000_000, 10);
        REDIS.stop();
        try {
            for (boolean stream : new boolean[] {false, true}) {
                try (Response response = client.newCall(chat(other, chatBody(stream, null), "redis-down-" + stream)
                        .build()).execute()) {
                    assertThat(response.code()).isEqualTo(503);
                    assertThat(response.header("Retry-After")).isEqualTo("5");
                    assertThat(response.body().string()).contains("\"code\":\"limits_unavailable\"")
                            .contains("\"type\":\"server_error\"");
                }
            }
        } finally {
            REDIS.start();
        }
        awaitTrue("admitted again once Redis is back", () -> {
            try (Response response = client.newCall(chat(other, chatBody(false, null), "redis-back").build())
                    .execute()) {
                return response.code() == 200;
            } catch (java.io.IOException e) {
                return false;
            }
        });
    }
}
