package dev.llmrelay.gateway.tracing;

import java.io.IOException;

import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

import org.slf4j.MDC;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;
import org.springframework.web.servlet.HandlerMapping;

import dev.llmrelay.gateway.system.RequestIdFilter;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Scope;

/**
 * The gateway request's span (SERVER): continues the caller's {@code traceparent} or starts a trace, is current
 * while the request thread runs (the chat pipeline's spans are its children), puts {@code trace_id} in the logging
 * context, and ends when the response does: for a stream, when its async request completes. Named
 * {@code METHOD route} once the route is known. Scrapes and probes ({@code /actuator}) are not traced; with tracing
 * off the filter steps aside.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE + 1) // inside RequestIdFilter: the request id is known
class TracingFilter extends OncePerRequestFilter {

    static final String TRACE_ID = "trace_id";

    private final Tracing tracing;

    TracingFilter(Tracing tracing) {
        this.tracing = tracing;
    }

    @Override
    protected boolean shouldNotFilter(HttpServletRequest request) {
        return !tracing.enabled() || request.getRequestURI().startsWith("/actuator");
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        Span span = tracing.tracer().spanBuilder(request.getMethod())
                .setParent(tracing.extract(request))
                .setSpanKind(SpanKind.SERVER)
                .setAttribute("http.request.method", request.getMethod())
                .setAttribute("url.path", request.getRequestURI())
                .setAttribute("url.scheme", request.getScheme())
                .setAttribute("server.port", (long) request.getLocalPort())
                .setAttribute("client.address", request.getRemoteAddr())
                .setAttribute("llm_relay.request_id", RequestIdFilter.of(request))
                .startSpan();
        MDC.put(TRACE_ID, span.getSpanContext().getTraceId());
        boolean failed = true;
        try (Scope ignored = span.makeCurrent()) {
            chain.doFilter(request, response);
            failed = false;
        } finally {
            MDC.remove(TRACE_ID);
            if (!failed && request.isAsyncStarted()) {
                request.getAsyncContext().addListener(new EndOnCompletion(span, request, response));
            } else {
                end(span, request, failed ? 500 : response.getStatus());
            }
        }
    }

    private static void end(Span span, HttpServletRequest request, int status) {
        Object route = request.getAttribute(HandlerMapping.BEST_MATCHING_PATTERN_ATTRIBUTE);
        if (route != null) {
            span.updateName(request.getMethod() + " " + route);
            span.setAttribute("http.route", route.toString());
        }
        span.setAttribute("http.response.status_code", (long) status);
        if (status >= 500) {
            span.setStatus(StatusCode.ERROR);
            span.setAttribute("error.type", Integer.toString(status));
        }
        span.end();
    }

    /** Ends a stream's span when its async request is over, however that came. */
    private record EndOnCompletion(Span span, HttpServletRequest request, HttpServletResponse response)
            implements AsyncListener {
        @Override
        public void onComplete(AsyncEvent event) {
            end(span, request, response.getStatus());
        }

        @Override
        public void onTimeout(AsyncEvent event) {
            span.setAttribute("error.type", "timeout");
        }

        @Override
        public void onError(AsyncEvent event) {
            span.setAttribute("error.type", event.getThrowable() != null
                    ? event.getThrowable().getClass().getName() : "error");
        }

        @Override
        public void onStartAsync(AsyncEvent event) {
            event.getAsyncContext().addListener(this); // a re-dispatch starts async again: keep listening
        }
    }
}
