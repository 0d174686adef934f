package dev.llmrelay.gateway.upstream;

/** Teaches the gateway what the replicas list in /v1/models, as the health probe would, for tests elsewhere. */
public final class ModelListings {

    private ModelListings() {
    }

    public static void listEverywhere(UpstreamModels models, UpstreamPool pool, String model, int maxModelLen) {
        for (Upstream upstream : pool.upstreams()) {
            models.learn(upstream, "{\"object\":\"list\",\"data\":[{\"id\":\"" + model + "\",\"object\":\"model\","
                    + "\"max_model_len\":" + maxModelLen + "}]}");
        }
    }

    /** Models learnt from one replica listing {@code model} with that context length (unit tests elsewhere). */
    public static UpstreamModels listing(String model, int maxModelLen) {
        var source = new org.springframework.boot.context.properties.source.MapConfigurationPropertySource();
        source.put("gateway.upstreams", "http://replica:1");
        var properties = new org.springframework.boot.context.properties.bind.Binder(source)
                .bindOrCreate("gateway", dev.llmrelay.gateway.system.GatewayProperties.class);
        UpstreamPool pool = new UpstreamPool(properties,
                io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry.ofDefaults(),
                new io.micrometer.core.instrument.simple.SimpleMeterRegistry());
        UpstreamModels models = new UpstreamModels(new com.fasterxml.jackson.databind.ObjectMapper());
        listEverywhere(models, pool, model, maxModelLen);
        return models;
    }

    public static void forgetAll(UpstreamModels models) {
        models.forgetAll();
    }
}
