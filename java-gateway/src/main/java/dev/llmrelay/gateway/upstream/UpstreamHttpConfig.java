package dev.llmrelay.gateway.upstream;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import dev.llmrelay.gateway.system.GatewayProperties;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.github.resilience4j.micrometer.tagged.TaggedCircuitBreakerMetrics;
import io.micrometer.core.instrument.MeterRegistry;
import okhttp3.ConnectionPool;
import okhttp3.Dispatcher;
import okhttp3.OkHttpClient;

@Configuration(proxyBeanMethods = false)
class UpstreamHttpConfig {

    /** Streams to one model-service host; OkHttp's default (5 per host) would silently queue the rest. */
    static final int MAX_STREAMS_PER_HOST = 1024;

    @Bean(destroyMethod = "")
    OkHttpClient upstreamHttpClient(GatewayProperties properties,
            @Value("${spring.threads.virtual.enabled:false}") boolean virtualThreads) {
        ExecutorService readers = virtualThreads ? virtualThreadPerTask() : null;
        Dispatcher dispatcher = readers != null ? new Dispatcher(readers) : new Dispatcher();
        dispatcher.setMaxRequests(MAX_STREAMS_PER_HOST * 2);
        dispatcher.setMaxRequestsPerHost(MAX_STREAMS_PER_HOST);
        OkHttpClient.Builder builder = new OkHttpClient.Builder();
        String upstreamKey = properties.upstreamApiKey();
        if (upstreamKey != null && !upstreamKey.isBlank()) {
            String authorization = "Bearer " + upstreamKey.strip();
            // the one place the model-service key is added, for chat, models and health calls alike
            builder.addInterceptor(chain -> chain.proceed(
                    chain.request().newBuilder().header("Authorization", authorization).build()));
        }
        return builder
                .dispatcher(dispatcher)
                .connectionPool(new ConnectionPool(256, 5, TimeUnit.MINUTES))
                .connectTimeout(properties.timeouts().connect())
                // readTimeout is the idle limit of a stream: it must outlast the slowest prefill
                .readTimeout(properties.timeouts().read())
                .writeTimeout(properties.timeouts().connect().multipliedBy(4))
                .build();
    }

    /**
     * With {@code spring.threads.virtual.enabled} on a JDK 21+ (where Boot gives Tomcat virtual threads too),
     * each upstream stream's reader is a virtual thread: a thousand streams park on a few carrier threads
     * instead of a thousand platform threads. Null (platform threads) on an older JDK; the build stays on 17.
     */
    static ExecutorService virtualThreadPerTask() {
        try {
            return (ExecutorService) Executors.class.getMethod("newVirtualThreadPerTaskExecutor").invoke(null);
        } catch (ReflectiveOperationException e) {
            LoggerFactory.getLogger(UpstreamHttpConfig.class).warn("spring.threads.virtual.enabled needs a JDK 21+ "
                    + "(this is {}); upstream readers stay on platform threads", Runtime.version());
            return null;
        }
    }

    @Bean
    UpstreamHttpClientCloser upstreamHttpClientCloser(OkHttpClient upstreamHttpClient) {
        return new UpstreamHttpClientCloser(upstreamHttpClient);
    }

    @Bean
    CircuitBreakerRegistry upstreamBreakers(GatewayProperties properties, MeterRegistry meters) {
        GatewayProperties.Breaker breaker = properties.breaker();
        CircuitBreakerConfig config = CircuitBreakerConfig.custom()
                .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                .slidingWindowSize(breaker.slidingWindowSize())
                .minimumNumberOfCalls(breaker.minimumCalls())
                .failureRateThreshold(breaker.failureRatePercent())
                .waitDurationInOpenState(breaker.waitInOpen())
                .permittedNumberOfCallsInHalfOpenState(breaker.halfOpenCalls())
                // set on purpose: Resilience4j's default (60 s, 100 %) opened the breaker after long,
                // healthy streams; UpstreamLease reports time-to-open only, so this measures how a call starts
                .slowCallDurationThreshold(breaker.slowOpenThreshold())
                .slowCallRateThreshold(breaker.slowOpenRatePercent())
                .build();
        CircuitBreakerRegistry registry = CircuitBreakerRegistry.of(config);
        TaggedCircuitBreakerMetrics.ofCircuitBreakerRegistry(registry).bindTo(meters);
        return registry;
    }

    /** Stops OkHttp's threads and idle connections with the context. */
    static final class UpstreamHttpClientCloser implements AutoCloseable {
        private final OkHttpClient client;

        UpstreamHttpClientCloser(OkHttpClient client) {
            this.client = client;
        }

        @Override
        public void close() {
            client.dispatcher().cancelAll();
            client.dispatcher().executorService().shutdown();
            client.connectionPool().evictAll();
        }
    }
}
