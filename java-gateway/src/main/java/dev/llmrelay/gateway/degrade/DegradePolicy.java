package dev.llmrelay.gateway.degrade;

import java.util.Map;

/**
 * The operator's degradation settings at one moment, as every instance applies them.
 *
 * @param maxTokensCap            completion tokens any request may ask for (null: no cap)
 * @param pausedModels            model or pool name -> the message paused requests get
 * @param newConversationsRefusal the message new browser conversations are refused with (null: allowed)
 * @param fallbacks               pool name -> the model whose pool serves its requests when it cannot
 */
public record DegradePolicy(Integer maxTokensCap, Map<String, String> pausedModels, String newConversationsRefusal,
        Map<String, String> fallbacks) {

    public static final DegradePolicy NONE = new DegradePolicy(null, Map.of(), null, Map.of());

    public DegradePolicy {
        pausedModels = Map.copyOf(pausedModels);
        fallbacks = Map.copyOf(fallbacks);
    }
}
