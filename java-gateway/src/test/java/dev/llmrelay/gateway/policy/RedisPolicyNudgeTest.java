package dev.llmrelay.gateway.policy;

import static org.assertj.core.api.Assertions.assertThat;


import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import dev.llmrelay.gateway.support.GatewayTestSupport;
import dev.llmrelay.gateway.support.RedisServer;

/**
 * With GATEWAY_LIMITS_STORE=redis a policy change reaches another gateway through a Redis message: here
 * both gateways have their poll turned off, so the nudge is the only way the second can learn of it.
 */
@DirtiesContext // its Redis stops after this class: do not leave a cached context reconnecting to it
class RedisPolicyNudgeTest extends GatewayTestSupport {

    @RegisterExtension
    static final RedisServer REDIS = new RedisServer();

    @DynamicPropertySource
    static void redis(DynamicPropertyRegistry registry) {
        registry.add("gateway.limits.store", () -> "redis");
        registry.add("gateway.redis.url", REDIS::url);
        registry.add("gateway.policy.poll-interval", () -> "0");
    }

    @Autowired
    PolicyVersions versions;

    @Test
    void aChangeReachesASecondGatewayByRedisWithoutAnyPoll() throws Exception {
        try (ConfigurableApplicationContext second = startSecondGateway("--gateway.limits.store=redis",
                "--gateway.redis.url=" + REDIS.url(), "--gateway.policy.poll-interval=0")) {
            PolicyVersions other = second.getBean(PolicyVersions.class);
            assertThat(other.isRunning()).isFalse(); // no poll: only the nudge can move it
            long before = other.loadedVersion();
            long changed = versions.change(() -> jdbc.sql("SELECT version FROM policy_version").query(Long.class)
                    .single() + 1);
            long committed = System.nanoTime();
            assertThat(versions.loadedVersion()).isEqualTo(changed);
            awaitTrue("the second gateway reloaded on the nudge", () -> other.loadedVersion() == changed);
            System.out.printf("policy nudge: second gateway serves version %d %.0f ms after the change (no poll)%n",
                    changed, (System.nanoTime() - committed) / 1e6);
            assertThat(changed).isEqualTo(before + 1);
        }
    }

}
