package dev.llmrelay.gateway.tracing;

import jakarta.servlet.http.HttpServletRequest;

import java.util.Collections;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapPropagator;
import okhttp3.Request;

/**
 * What the gateway's code needs of OpenTelemetry: its tracer, and W3C trace context read from a servlet request
 * and written onto an upstream call. With tracing off every span is OpenTelemetry's no-op one and nothing is
 * read or written.
 */
public final class Tracing {

    public static final String INSTRUMENTATION = "dev.llmrelay.gateway";
    private static final AttributeKey<String> FILTER_LIST = AttributeKey.stringKey("llm_relay.content_filter.list");
    private static final AttributeKey<String> FILTER_ACTION = AttributeKey.stringKey("llm_relay.content_filter.action");
    private static final AttributeKey<String> FILTER_SIDE = AttributeKey.stringKey("llm_relay.content_filter.side");
    private static final AttributeKey<Long> FILTER_MATCHES = AttributeKey.longKey("llm_relay.content_filter.matches");

    private static final TextMapGetter<HttpServletRequest> HEADERS = new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(HttpServletRequest request) {
            return Collections.list(request.getHeaderNames());
        }

        @Override
        public String get(HttpServletRequest request, String key) {
            return request == null ? null : request.getHeader(key);
        }
    };

    private final Tracer tracer;
    private final TextMapPropagator propagator;
    private final boolean enabled;

    Tracing(OpenTelemetry openTelemetry) {
        this.tracer = openTelemetry.getTracer(INSTRUMENTATION);
        this.propagator = openTelemetry.getPropagators().getTextMapPropagator();
        this.enabled = openTelemetry != OpenTelemetry.noop();
    }

    /** Tracing off (unit tests of code that takes a Tracing). */
    public static Tracing off() {
        return new Tracing(OpenTelemetry.noop());
    }

    public boolean enabled() {
        return enabled;
    }

    public Tracer tracer() {
        return tracer;
    }

    /** The caller's trace context ({@code traceparent}), or the root context without one. */
    Context extract(HttpServletRequest request) {
        return propagator.extract(Context.root(), request, HEADERS);
    }

    /** Puts {@code context}'s span on the upstream call as {@code traceparent}, so the model-service continues it. */
    public void inject(Context context, Request.Builder call) {
        propagator.inject(context, call, (builder, key, value) -> builder.header(key, value));
    }

    /** A content-filter list matched this request's prompt or output: an event on {@code span}. */
    public static void filterHit(Span span, String list, String action, String side, int matches) {
        span.addEvent("content_filter.hit", Attributes.of(FILTER_LIST, list, FILTER_ACTION, action, FILTER_SIDE, side,
                FILTER_MATCHES, (long) matches));
    }

    /** The trace id of {@code span} for a log line, or null when it has none (tracing off). */
    public static String traceId(Span span) {
        return span.getSpanContext().isValid() ? span.getSpanContext().getTraceId() : null;
    }
}
