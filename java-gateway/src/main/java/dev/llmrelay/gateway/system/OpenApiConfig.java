package dev.llmrelay.gateway.system;


import org.springdoc.core.customizers.OpenApiCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import io.swagger.v3.core.converter.ModelConverters;
import io.swagger.v3.oas.annotations.OpenAPIDefinition;
import io.swagger.v3.oas.annotations.enums.SecuritySchemeType;
import io.swagger.v3.oas.annotations.info.Info;
import io.swagger.v3.oas.annotations.security.SecurityScheme;
import io.swagger.v3.oas.annotations.security.SecuritySchemes;
import io.swagger.v3.oas.models.Components;
import io.swagger.v3.oas.models.Operation;
import io.swagger.v3.oas.models.media.Content;
import io.swagger.v3.oas.models.media.MediaType;
import io.swagger.v3.oas.models.media.Schema;
import io.swagger.v3.oas.models.responses.ApiResponse;

/**
 * The OpenAPI document: title, the two bearer schemes (API key on /v1, admin token on /admin), and
 * every operation's error answers in its surface's shape.
 */
@Configuration(proxyBeanMethods = false)
@OpenAPIDefinition(info = @Info(title = "llm-relay gateway", version = "0.1.0",
        description = "API keys, per-key limits, resilient SSE relay to model-service, usage accounting"))
@SecuritySchemes({
        @SecurityScheme(name = "apiKey", type = SecuritySchemeType.HTTP, scheme = "bearer"),
        @SecurityScheme(name = "adminToken", type = SecuritySchemeType.HTTP, scheme = "bearer")})
class OpenApiConfig {

    private static final String EVENT_STREAM = "text/event-stream";

    /**
     * Any status an operation does not list (400 bad JSON, 401, 404, 405, 415, 429, 503...) is a
     * {@code default} response in the path's error shape: OpenAI's on /v1 (a stream route may also
     * answer it as an event stream: one error event, then {@code data: [DONE]}), RFC 9457 elsewhere.
     */
    @Bean
    OpenApiCustomizer errorResponses() {
        return openApi -> {
            Components components = openApi.getComponents() != null ? openApi.getComponents() : new Components();
            openApi.setComponents(components);
            for (Class<?> type : new Class<?>[] {ApiSchemas.OpenAiError.class, ApiSchemas.Problem.class,
                    ApiSchemas.ServerSentEvent.class}) {
                ModelConverters.getInstance(true).readAll(type).forEach(components::addSchemas);
            }
            if (openApi.getPaths() == null) {
                return;
            }
            openApi.getPaths().forEach((path, item) -> item.readOperations().forEach(operation -> {
                if (operation.getResponses() != null && !operation.getResponses().containsKey("default")) {
                    operation.getResponses().addApiResponse("default", errorResponse(path, operation));
                }
            }));
        };
    }

    private static ApiResponse errorResponse(String path, Operation operation) {
        Content content = new Content();
        if (path.startsWith("/v1/")) {
            content.addMediaType("application/json", new MediaType().schema(ref("OpenAiError")));
            if (answersEventStream(operation)) {
                content.addMediaType(EVENT_STREAM, new MediaType().schema(ref("ServerSentEvent")));
            }
            return new ApiResponse().description("Error, OpenAI shape").content(content);
        }
        content.addMediaType("application/problem+json", new MediaType().schema(ref("Problem")));
        return new ApiResponse().description("Error, RFC 9457 problem details").content(content);
    }

    private static boolean answersEventStream(Operation operation) {
        ApiResponse ok = operation.getResponses().get("200");
        return ok != null && ok.getContent() != null && ok.getContent().containsKey(EVENT_STREAM);
    }

    private static Schema<?> ref(String name) {
        return new Schema<>().$ref("#/components/schemas/" + name);
    }
}
