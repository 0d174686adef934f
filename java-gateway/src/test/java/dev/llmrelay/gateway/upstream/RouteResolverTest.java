package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.MapConfigurationPropertySource;

import com.fasterxml.jackson.databind.ObjectMapper;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.system.OpenAiException;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/** Requested model -> pool -> the model that pool serves, the name every policy keys on. */
class RouteResolverTest {

    private final UpstreamModels models = new UpstreamModels(new ObjectMapper());

    private UpstreamPool pool(String upstreams) {
        var source = new MapConfigurationPropertySource();
        source.put("gateway.upstreams", upstreams);
        GatewayProperties properties = new Binder(source).bindOrCreate("gateway", GatewayProperties.class);
        return new UpstreamPool(properties, CircuitBreakerRegistry.ofDefaults(), new SimpleMeterRegistry());
    }

    private void lists(UpstreamPool pool, int upstream, String... ids) {
        StringBuilder data = new StringBuilder();
        for (String id : ids) {
            data.append(data.length() == 0 ? "" : ",").append("{\"id\":\"").append(id).append("\",\"object\":\"model\"}");
        }
        models.learn(pool.upstreams().get(upstream), "{\"object\":\"list\",\"data\":[" + data + "]}");
    }

    @Test
    void aRequestNamingNoModelIsServedByTheModelTheDefaultPoolsReplicasList() {
        UpstreamPool pool = pool("http://a:1,http://b:1");
        lists(pool, 0, "smollm2-135m-instruct");
        lists(pool, 1, "smollm2-135m-instruct");
        RouteResolver routes = new RouteResolver(pool, models);
        assertThat(routes.resolve(null)).isEqualTo(new RouteResolver.Target(null, "default", "smollm2-135m-instruct"));
        assertThat(routes.resolve("smollm2-135m-instruct"))
                .isEqualTo(new RouteResolver.Target("smollm2-135m-instruct", "default", "smollm2-135m-instruct"));
    }

    @Test
    void aNamedModelIsServedAsNamedInItsOwnPoolOrTheDefaultOne() {
        UpstreamPool pool = pool("http://a:1,qwen=http://q:1");
        lists(pool, 0, "smollm2");
        lists(pool, 1, "qwen");
        RouteResolver routes = new RouteResolver(pool, models);
        assertThat(routes.resolve("qwen")).isEqualTo(new RouteResolver.Target("qwen", "qwen", "qwen"));
        assertThat(routes.resolve("other")).isEqualTo(new RouteResolver.Target("other", "default", "other"));
        assertThat(routes.resolve(null)).isEqualTo(new RouteResolver.Target(null, "default", "smollm2"));
    }

    @Test
    void theServedModelStaysUnknownWhileTheDefaultPoolsModelIsNotOneModelOfThatPool() {
        UpstreamPool pool = pool("http://a:1,http://b:1,qwen=http://q:1");
        RouteResolver routes = new RouteResolver(pool, models);
        RouteResolver.Target unknown = new RouteResolver.Target(null, "default", null);
        assertThat(routes.resolve(null)).as("nothing listed yet").isEqualTo(unknown);
        lists(pool, 0, "smollm2");
        lists(pool, 1, "tinyllama");
        assertThat(routes.resolve(null)).as("replicas disagree").isEqualTo(unknown);
        lists(pool, 1, "smollm2", "tinyllama");
        assertThat(routes.resolve(null)).as("a replica lists two").isEqualTo(unknown);
        lists(pool, 0, "qwen");
        lists(pool, 1, "qwen");
        assertThat(routes.resolve(null)).as("the name of another pool").isEqualTo(unknown);
        lists(pool, 0, "smollm2");
        lists(pool, 1, "smollm2");
        lists(pool, 2, "smollm2"); // the qwen pool's listing is not the default pool's
        assertThat(routes.resolve(null)).isEqualTo(new RouteResolver.Target(null, "default", "smollm2"));
    }

    @Test
    void withoutADefaultPoolANamelessRequestHasNoServedModelAndAnUngroupedModelIsNotServed() {
        UpstreamPool pool = pool("smollm2=http://a:1,qwen=http://q:1");
        lists(pool, 0, "smollm2");
        lists(pool, 1, "smollm2");
        RouteResolver routes = new RouteResolver(pool, models);
        assertThat(routes.resolve(null)).isEqualTo(new RouteResolver.Target(null, "default", null));
        assertThatThrownBy(() -> routes.resolve("gpt-4o")).isInstanceOfSatisfying(OpenAiException.class, e -> {
            assertThat(e.status()).isEqualTo(404);
            assertThat(e.code()).isEqualTo("model_not_found");
            assertThat(e.param()).isEqualTo("model");
        });
    }
}
