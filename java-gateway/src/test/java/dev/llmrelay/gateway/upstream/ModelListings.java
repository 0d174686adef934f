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

    public static void forgetAll(UpstreamModels models) {
        models.forgetAll();
    }
}
