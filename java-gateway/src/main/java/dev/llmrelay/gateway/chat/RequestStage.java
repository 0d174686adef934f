package dev.llmrelay.gateway.chat;

import dev.llmrelay.gateway.usage.EndReason;

/**
 * One step of the {@link RequestPipeline}, with one job: it checks the request, decides something about it
 * or takes something for it. It refuses by throwing
 * {@link dev.llmrelay.gateway.system.OpenAiException} (or
 * {@link dev.llmrelay.gateway.ratelimit.RateLimitExceededException}); the pipeline then gives back what
 * earlier stages took and writes the refusal's usage row with {@link #refusal()}.
 */
interface RequestStage {

    void apply(GenerationRequest request);

    /** The usage row's end reason when this stage refuses. */
    EndReason refusal();
}
