package dev.llmrelay.gateway.ratelimit;

import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.GatewayProperties.Limits.Store;
import io.micrometer.core.instrument.MeterRegistry;

/** Chooses the limit store ({@code GATEWAY_LIMITS_STORE}); memory needs nothing else running. */
@Configuration(proxyBeanMethods = false)
class LimitStoreConfiguration {

    @Bean(destroyMethod = "close")
    LimitStore limitStore(GatewayProperties properties) {
        if (properties.limits().store() == Store.REDIS) {
            return new RedisLimitStore(properties.redis().url(), properties.redis().timeout(),
                    properties.limits().streamLease());
        }
        return new InMemoryLimitStore();
    }

    @Bean
    TokenBudgets tokenBudgets(LimitStore store, GatewayProperties properties,
            dev.llmrelay.gateway.usage.UsageRecorder usage, MeterRegistry meters) {
        return new TokenBudgets(store, properties.limits().onStoreFailure(), properties.timeouts().retryAfter(),
                usage::tokensSince, meters, java.time.Clock.systemUTC());
    }

    @Bean
    KeyRateLimiter keyRateLimiter(LimitStore store, GatewayProperties properties, MeterRegistry meters) {
        return new KeyRateLimiter(store, properties.limits().onStoreFailure(), properties.timeouts().retryAfter(),
                meters);
    }
}
