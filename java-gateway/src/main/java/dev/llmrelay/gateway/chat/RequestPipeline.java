package dev.llmrelay.gateway.chat;

import java.util.List;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.stereotype.Component;

import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.llmrelay.gateway.keys.ApiKey;
import dev.llmrelay.gateway.ratelimit.RateLimitExceededException;
import dev.llmrelay.gateway.system.OpenAiException;
import dev.llmrelay.gateway.tracing.Tracing;
import dev.llmrelay.gateway.usage.UsageRecorder;

/**
 * The stages every generation request passes before an upstream sees it, in this order, for /v1 chat,
 * /v1/completions and the browser API alike:
 * <ol>
 * <li>{@link ValidateStage}: its shape and {@code n}; every 400 of shape comes before any reservation</li>
 * <li>{@link RouteStage}: requested model -> pool -> the model that pool serves; every later stage keys
 * on the served model, so leaving out {@code model} escapes nothing</li>
 * <li>policies: {@link PauseStage}, {@link MaxTokensCapStage}, {@link PromptFilterStage},
 * {@link ContextLengthStage}</li>
 * <li>admission: {@link BudgetStage} (the key's token budget, which may lower {@code max_tokens} to what is
 * left), {@link KeyLimitStage} (the key's limits), {@link SheddingStage} (the pool's slot or its fallback)</li>
 * <li>{@link UpstreamRequestStage}: the body the upstream gets, with the served model's system prompt</li>
 * </ol>
 * A refusal gives back what earlier stages took and writes its one usage row; an admitted request is
 * accounted for by its stream ({@link StreamAccounting}).
 */
@Component
class RequestPipeline {

    private final List<RequestStage> stages;
    private final UsageRecorder usage;
    private final Tracing tracing;

    @Autowired
    RequestPipeline(ValidateStage validate, RouteStage route, PauseStage pause, MaxTokensCapStage cap,
            PromptFilterStage promptFilter, ContextLengthStage contextLength, BudgetStage budget,
            KeyLimitStage keyLimits, SheddingStage shedding, UpstreamRequestStage upstreamRequest, UsageRecorder usage,
            Tracing tracing) {
        this(List.of(validate, route, pause, cap, promptFilter, contextLength, budget, keyLimits, shedding,
                upstreamRequest), usage, tracing);
    }

    /** Any stages, in order (a unit test's), not traced. */
    RequestPipeline(List<RequestStage> stages, UsageRecorder usage) {
        this(stages, usage, Tracing.off());
    }

    private RequestPipeline(List<RequestStage> stages, UsageRecorder usage, Tracing tracing) {
        this.stages = List.copyOf(stages);
        this.usage = usage;
        this.tracing = tracing;
    }

    /**
     * Runs every stage over the request.
     *
     * @throws OpenAiException 4xx/5xx from the stage that refused
     * @throws RateLimitExceededException 429 when a limit of the key is spent
     */
    GenerationRequest admit(GenerationEndpoint endpoint, ApiKey key, ObjectNode body, String requestId,
            String affinityKey) {
        GenerationRequest request = new GenerationRequest(endpoint, key, body, requestId, affinityKey,
                RequestTrace.start(tracing));
        try (RequestTrace.Admission admission = request.trace.admission()) {
            for (RequestStage stage : stages) {
                try {
                    stage.apply(request);
                } catch (OpenAiException refused) { // a RateLimitExceededException too
                    admission.refused(stage, refused.status());
                    refuse(request, stage, refused.status());
                    throw refused;
                } catch (RuntimeException broken) {
                    request.releaseAdmission();
                    throw broken;
                }
            }
        }
        return request;
    }

    private void refuse(GenerationRequest request, RequestStage stage, int status) {
        request.releaseAdmission();
        usage.recordRefused(request.requestId, request.key.id(), request.endpoint.usageName,
                request.model != null ? request.model : request.requestedModel, request.clientStreams,
                stage.refusal(), status);
    }
}
