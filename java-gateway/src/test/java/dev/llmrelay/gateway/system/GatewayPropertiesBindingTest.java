package dev.llmrelay.gateway.system;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.ConfigurationPropertySources;
import org.springframework.core.env.MutablePropertySources;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;

/** The env names of docs/contracts.md bind through Spring's real relaxed binding for environment variables. */
class GatewayPropertiesBindingTest {

    private static GatewayProperties bind(Map<String, Object> env) {
        StandardEnvironment environment = new StandardEnvironment();
        MutablePropertySources sources = environment.getPropertySources();
        sources.remove(StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME);
        sources.remove(StandardEnvironment.SYSTEM_PROPERTIES_PROPERTY_SOURCE_NAME);
        sources.addFirst(new SystemEnvironmentPropertySource(
                StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME, env));
        return new Binder(ConfigurationPropertySources.get(environment))
                .bindOrCreate("gateway", GatewayProperties.class);
    }

    @Test
    void defaultsMatchTheContract() {
        GatewayProperties p = bind(Map.of());
        assertThat(p.upstreams()).containsExactly("http://127.0.0.1:6006");
        assertThat(p.webDir()).isEqualTo("../web");
        assertThat(p.adminToken()).isNull();
        assertThat(p.corsOrigins()).isEmpty();
        assertThat(p.defaultRequestsPerMinute()).isEqualTo(60);
        assertThat(p.defaultTokensPerMinute()).isEqualTo(100000);
        assertThat(p.defaultMaxConcurrentStreams()).isEqualTo(4);
        assertThat(p.timeouts().read()).isGreaterThan(Duration.ofSeconds(60));
        assertThat(p.limits().store()).isEqualTo(GatewayProperties.Limits.Store.MEMORY); // make run needs no Redis
        assertThat(p.limits().onStoreFailure()).isEqualTo(GatewayProperties.Limits.StoreFailure.FAIL_OPEN);
    }

    @Test
    void environmentVariablesOfTheContractBind() {
        GatewayProperties p = bind(Map.of(
                "GATEWAY_UPSTREAMS", "http://a:6006,http://b:6006",
                "GATEWAY_UPSTREAM_API_KEY", "upstream-secret",
                "GATEWAY_ADMIN_TOKEN", "admin-secret",
                "GATEWAY_CORS_ORIGINS", "http://x.example,http://y.example",
                "GATEWAY_WEB_DIR", "/srv/web",
                "GATEWAY_BOOTSTRAP_KEY", "sk-relay-demo",
                "GATEWAY_DEFAULT_REQUESTS_PER_MINUTE", "7",
                "GATEWAY_DEFAULT_TOKENS_PER_MINUTE", "8",
                "GATEWAY_DEFAULT_MAX_CONCURRENT_STREAMS", "9",
                "GATEWAY_TIMEOUTS_READ", "600s"));
        assertThat(p.upstreams()).containsExactly("http://a:6006", "http://b:6006");
        assertThat(p.upstreamApiKey()).isEqualTo("upstream-secret");
        assertThat(p.adminToken()).isEqualTo("admin-secret");
        assertThat(p.corsOrigins()).containsExactly("http://x.example", "http://y.example");
        assertThat(p.webDir()).isEqualTo("/srv/web");
        assertThat(p.bootstrapKey()).isEqualTo("sk-relay-demo");
        assertThat(p.defaultRequestsPerMinute()).isEqualTo(7);
        assertThat(p.defaultTokensPerMinute()).isEqualTo(8);
        assertThat(p.defaultMaxConcurrentStreams()).isEqualTo(9);
        assertThat(p.timeouts().read()).isEqualTo(Duration.ofSeconds(600));
    }

    @Test
    void limitStoreEnvironmentVariablesBind() {
        GatewayProperties p = bind(Map.of(
                "GATEWAY_LIMITS_STORE", "redis",
                "GATEWAY_LIMITS_ON_STORE_FAILURE", "fail-closed",
                "GATEWAY_LIMITS_STREAM_LEASE", "45s",
                "GATEWAY_REDIS_URL", "redis://cache:6380/2",
                "GATEWAY_REDIS_TIMEOUT", "250ms"));
        assertThat(p.limits().store()).isEqualTo(GatewayProperties.Limits.Store.REDIS);
        assertThat(p.limits().onStoreFailure()).isEqualTo(GatewayProperties.Limits.StoreFailure.FAIL_CLOSED);
        assertThat(p.limits().streamLease()).isEqualTo(Duration.ofSeconds(45));
        assertThat(p.redis().url()).isEqualTo("redis://cache:6380/2");
        assertThat(p.redis().timeout()).isEqualTo(Duration.ofMillis(250));
    }

    @Test
    void degradationEnvironmentVariablesBindAndTheLimitIsOffByDefault() {
        GatewayProperties.Degrade defaults = bind(Map.of()).degrade();
        assertThat(defaults.adaptiveLimit()).isFalse();
        assertThat(defaults.shedRetryAfter()).isEqualTo(Duration.ofSeconds(1));
        GatewayProperties.Degrade p = bind(Map.of(
                "GATEWAY_DEGRADE_ADAPTIVE_LIMIT", "true",
                "GATEWAY_DEGRADE_INITIAL_LIMIT", "12",
                "GATEWAY_DEGRADE_MIN_LIMIT", "3",
                "GATEWAY_DEGRADE_MAX_LIMIT", "40",
                "GATEWAY_DEGRADE_SHED_RETRY_AFTER", "2s",
                "GATEWAY_DEGRADE_RTT_TOLERANCE", "1.1",
                "GATEWAY_DEGRADE_QUEUE_SIZE", "2")).degrade();
        assertThat(p.adaptiveLimit()).isTrue();
        assertThat(p.initialLimit()).isEqualTo(12);
        assertThat(p.minLimit()).isEqualTo(3);
        assertThat(p.maxLimit()).isEqualTo(40);
        assertThat(p.shedRetryAfter()).isEqualTo(Duration.ofSeconds(2));
        assertThat(p.rttTolerance()).isEqualTo(1.1);
        assertThat(p.queueSize()).isEqualTo(2);
    }
}
