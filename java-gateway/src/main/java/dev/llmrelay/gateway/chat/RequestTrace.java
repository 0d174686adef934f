package dev.llmrelay.gateway.chat;

import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;

import dev.llmrelay.gateway.safety.ContentFilterRepository.HitRow;
import dev.llmrelay.gateway.tracing.Tracing;
import dev.llmrelay.gateway.upstream.AttemptOutcome;
import dev.llmrelay.gateway.upstream.Upstream;
import dev.llmrelay.gateway.usage.EndReason;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanBuilder;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import okhttp3.HttpUrl;
import okhttp3.Request;

/**
 * One generation request's spans under the gateway request's span: {@code admission} (the pipeline's stages) and
 * one CLIENT span per upstream attempt, named {@code chat <model>} with OpenTelemetry's GenAI attributes, siblings
 * when the failover tries another replica; the attempt's context goes to the model-service as {@code traceparent}.
 * Content-filter hits are events (prompt hits on admission, output hits on the request's span). No prompt or
 * completion text is recorded. With tracing off every span is the no-op one.
 */
final class RequestTrace {

    static final String PROVIDER_NAME = "llm-relay";
    private static final AttributeKey<List<String>> FINISH_REASONS =
            AttributeKey.stringArrayKey("gen_ai.response.finish_reasons");

    private final Tracing tracing;
    /** The gateway request's context (its span is the parent of every span here). */
    private final Context parent;
    private int attempts;

    private RequestTrace(Tracing tracing, Context parent) {
        this.tracing = tracing;
        this.parent = parent;
    }

    /** No spans (a unit test's request). */
    static RequestTrace off() {
        return new RequestTrace(Tracing.off(), Context.root());
    }

    /** The trace of a request entering the pipeline now, under the span current on this thread. */
    static RequestTrace start(Tracing tracing) {
        return new RequestTrace(tracing, Context.current());
    }

    /** The admission span, current until closed (a stage's events land on it); nothing at all with tracing off. */
    Admission admission() {
        if (!tracing.enabled()) {
            return Admission.NONE;
        }
        Span span = tracing.tracer().spanBuilder("admission").setParent(parent).startSpan();
        return new Admission(span, span.makeCurrent());
    }

    /** The span of one attempt at {@code upstream}, for {@code request} as the pipeline let it in. */
    Span attempt(GenerationRequest request, Upstream upstream) {
        if (!tracing.enabled()) {
            return Span.getInvalid();
        }
        String operation = request.endpoint == GenerationEndpoint.CHAT ? "chat" : "text_completion";
        String model = request.route.model();
        HttpUrl url = upstream.url(request.endpoint.upstreamPath);
        SpanBuilder builder = tracing.tracer().spanBuilder(operation + " " + model).setParent(parent)
                .setSpanKind(SpanKind.CLIENT)
                .setAttribute("gen_ai.operation.name", operation)
                .setAttribute("gen_ai.provider.name", PROVIDER_NAME)
                .setAttribute("gen_ai.request.model", model)
                .setAttribute("server.address", url.host())
                .setAttribute("server.port", (long) url.port())
                .setAttribute("llm_relay.upstream", upstream.name())
                .setAttribute("llm_relay.attempt", (long) ++attempts);
        JsonNode body = request.body;
        JsonNode maxTokens = body.hasNonNull("max_completion_tokens") ? body.get("max_completion_tokens")
                : body.get("max_tokens");
        if (maxTokens != null && maxTokens.canConvertToLong()) {
            builder.setAttribute("gen_ai.request.max_tokens", maxTokens.asLong());
        }
        for (String name : new String[] {"temperature", "top_p"}) {
            JsonNode value = body.get(name);
            if (value != null && value.isNumber()) {
                builder.setAttribute("gen_ai.request." + name, value.asDouble());
            }
        }
        if (request.choices != 1) {
            builder.setAttribute("gen_ai.request.choice.count", (long) request.choices);
        }
        return builder.startSpan();
    }

    /** Puts {@code attempt}'s context on its upstream call. */
    void inject(Span attempt, Request.Builder call) {
        if (attempt.getSpanContext().isValid()) {
            tracing.inject(parent.with(attempt), call);
        }
    }

    /** An attempt that did not serve: its outcome decides what the failover does next. */
    static void failed(Span attempt, AttemptOutcome outcome) {
        attempt.setAttribute("error.type", outcome.kind().name().toLowerCase(java.util.Locale.ROOT));
        if (outcome.status() != 0) {
            attempt.setAttribute("http.response.status_code", (long) outcome.status());
        }
        attempt.setStatus(StatusCode.ERROR, outcome.description());
        attempt.end();
    }

    /**
     * The end of the attempt that served (or was cut): what it answered. {@code responseId} from its first chunk,
     * {@code ttftNanos} from its request sent to its first text (0: none came).
     */
    static void served(Span attempt, String responseModel, String responseId, String finishReason, ChatUsage usage,
            long ttftNanos, EndReason end, int status) {
        if (!attempt.getSpanContext().isValid()) {
            return;
        }
        attempt.setAttribute("gen_ai.response.model", responseModel);
        if (responseId != null) {
            attempt.setAttribute("gen_ai.response.id", responseId);
        }
        if (finishReason != null) {
            attempt.setAttribute(FINISH_REASONS, List.of(finishReason));
        }
        attempt.setAttribute("gen_ai.usage.input_tokens", (long) usage.promptTokens());
        attempt.setAttribute("gen_ai.usage.output_tokens", (long) usage.completionTokens());
        if (ttftNanos > 0) {
            attempt.setAttribute("gen_ai.latency.time_to_first_token", ttftNanos / 1e9);
        }
        attempt.setAttribute("llm_relay.end_reason", end.name());
        if (status >= 500) {
            attempt.setAttribute("error.type", end.name());
            attempt.setStatus(StatusCode.ERROR);
        }
        attempt.end();
    }

    /** The output filter's matches of this request, as events on the request's span. */
    void outputHits(List<HitRow> hits) {
        Span span = Span.fromContext(parent);
        for (HitRow hit : hits) {
            Tracing.filterHit(span, hit.list(), hit.action(), hit.side(), hit.matches());
        }
    }

    /** The request's trace id for its log line, or null with tracing off. */
    String traceId() {
        return Tracing.traceId(Span.fromContext(parent));
    }

    /** The admission span while the stages run. */
    static final class Admission implements AutoCloseable {
        /** Tracing off: no span to start, make current or end on every request. */
        static final Admission NONE = new Admission(Span.getInvalid(), Scope.noop());

        private final Span span;
        private final Scope scope;

        private Admission(Span span, Scope scope) {
            this.span = span;
            this.scope = scope;
        }

        void refused(RequestStage stage, int status) {
            span.setAttribute("llm_relay.refused_by", stage.getClass().getSimpleName());
            span.setAttribute("http.response.status_code", (long) status);
        }

        @Override
        public void close() {
            scope.close();
            span.end();
        }
    }
}
