package dev.llmrelay.gateway.system;

import org.springframework.context.annotation.Configuration;

import io.swagger.v3.oas.annotations.OpenAPIDefinition;
import io.swagger.v3.oas.annotations.enums.SecuritySchemeType;
import io.swagger.v3.oas.annotations.info.Info;
import io.swagger.v3.oas.annotations.security.SecurityScheme;
import io.swagger.v3.oas.annotations.security.SecuritySchemes;

/** The OpenAPI document's title and the two bearer schemes (API key on /v1, admin token on /admin). */
@Configuration(proxyBeanMethods = false)
@OpenAPIDefinition(info = @Info(title = "llm-relay gateway", version = "0.1.0",
        description = "API keys, per-key limits, resilient SSE relay to model-service, usage accounting"))
@SecuritySchemes({
        @SecurityScheme(name = "apiKey", type = SecuritySchemeType.HTTP, scheme = "bearer"),
        @SecurityScheme(name = "adminToken", type = SecuritySchemeType.HTTP, scheme = "bearer")})
class OpenApiConfig {
}
