package dev.llmrelay.gateway.tracing;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.util.StringUtils;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;

/**
 * The gateway's OpenTelemetry: off ({@link OpenTelemetry#noop()}: no spans, no ids, no headers) unless
 * {@code OTEL_EXPORTER_OTLP_ENDPOINT} or {@code OTEL_EXPORTER_OTLP_TRACES_ENDPOINT} is set; then the SDK's
 * autoconfiguration with every standard {@code OTEL_*} variable (OTLP over HTTP/protobuf by default, batched), with
 * {@code service.name} llm-relay-gateway unless {@code OTEL_SERVICE_NAME} says otherwise, W3C trace context, and
 * neither metrics (Prometheus has them) nor logs exported. An application's own {@link SpanExporter} bean (a test's
 * in-memory one) turns it on with that exporter instead.
 */
@Configuration(proxyBeanMethods = false)
class TracingConfig {

    static final String SERVICE_NAME = "llm-relay-gateway";
    private static final Logger log = LoggerFactory.getLogger(TracingConfig.class);
    /** Standard keys a Spring property (or its environment variable) may set, passed to the autoconfiguration. */
    private static final List<String> PASSED_ON = List.of("otel.exporter.otlp.endpoint",
            "otel.exporter.otlp.traces.endpoint", "otel.exporter.otlp.protocol", "otel.exporter.otlp.traces.protocol",
            "otel.exporter.otlp.headers", "otel.exporter.otlp.traces.headers", "otel.exporter.otlp.timeout",
            "otel.bsp.schedule.delay", "otel.bsp.max.queue.size", "otel.bsp.max.export.batch.size",
            "otel.resource.attributes", "otel.traces.sampler", "otel.traces.sampler.arg");

    @Bean
    OpenTelemetry openTelemetry(Environment environment, ObjectProvider<SpanExporter> exporters) {
        List<SpanExporter> given = exporters.orderedStream().toList();
        if (!given.isEmpty()) {
            return OpenTelemetrySdk.builder()
                    .setTracerProvider(SdkTracerProvider.builder()
                            .setResource(Resource.getDefault().merge(Resource.create(
                                    Attributes.of(AttributeKey.stringKey("service.name"), SERVICE_NAME))))
                            .addSpanProcessor(SimpleSpanProcessor.create(SpanExporter.composite(given))).build())
                    .setPropagators(ContextPropagators.create(W3CTraceContextPropagator.getInstance()))
                    .build();
        }
        if (!enabled(environment)) {
            return OpenTelemetry.noop();
        }
        Map<String, String> properties = new HashMap<>();
        properties.put("otel.service.name", environment.getProperty("otel.service.name", SERVICE_NAME));
        properties.put("otel.traces.exporter", "otlp");
        properties.put("otel.metrics.exporter", "none");
        properties.put("otel.logs.exporter", "none");
        properties.put("otel.propagators", "tracecontext,baggage");
        // the SDK's own default is gRPC, whose sender is not on the class path; HTTP/protobuf as on the model-service
        properties.put("otel.exporter.otlp.protocol", "http/protobuf");
        for (String key : PASSED_ON) {
            String value = environment.getProperty(key);
            if (StringUtils.hasText(value)) {
                properties.put(key, value);
            }
        }
        log.info("tracing on: spans go to {}", properties.getOrDefault("otel.exporter.otlp.traces.endpoint",
                properties.get("otel.exporter.otlp.endpoint")));
        // Spring closes the SDK with the context (flushing what is batched); no second hook of its own
        return AutoConfiguredOpenTelemetrySdk.builder().addPropertiesSupplier(() -> properties)
                .disableShutdownHook().build().getOpenTelemetrySdk();
    }

    @Bean
    Tracing tracing(OpenTelemetry openTelemetry) {
        return new Tracing(openTelemetry);
    }

    /** Whether an OTLP endpoint is configured and no standard switch turns tracing off. */
    static boolean enabled(Environment environment) {
        boolean endpoint = StringUtils.hasText(environment.getProperty("otel.exporter.otlp.endpoint"))
                || StringUtils.hasText(environment.getProperty("otel.exporter.otlp.traces.endpoint"));
        boolean disabled = "true".equalsIgnoreCase(environment.getProperty("otel.sdk.disabled", "").strip())
                || "none".equalsIgnoreCase(environment.getProperty("otel.traces.exporter", "").strip());
        return endpoint && !disabled;
    }
}
