package dev.llmrelay.gateway.system;

import java.nio.file.Files;
import java.nio.file.Path;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.Configuration;
import org.springframework.web.servlet.config.annotation.CorsRegistry;
import org.springframework.web.servlet.config.annotation.ResourceHandlerRegistry;
import org.springframework.web.servlet.config.annotation.ViewControllerRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/** CORS for the configured origins and the static chat page from GATEWAY_WEB_DIR. */
@Configuration(proxyBeanMethods = false)
class WebConfig implements WebMvcConfigurer {

    private static final Logger log = LoggerFactory.getLogger(WebConfig.class);

    /** Headers a browser script may read: rate limits and the request id. */
    static final String[] EXPOSED_HEADERS = {"X-Request-Id", "Retry-After", "X-RateLimit-Limit",
            "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Limit-Tokens", "X-RateLimit-Remaining-Tokens"};

    private final GatewayProperties properties;
    private final Path webDir;

    WebConfig(GatewayProperties properties) {
        this.properties = properties;
        this.webDir = resolveWebDir(properties.webDir());
    }

    /** Relative paths resolve against the working directory; a missing directory means no page. */
    static Path resolveWebDir(String configured) {
        if (configured == null || configured.isBlank()) {
            return null;
        }
        Path dir = Path.of(configured.strip()).toAbsolutePath().normalize();
        if (!Files.isDirectory(dir)) {
            log.warn("GATEWAY_WEB_DIR {} is not a directory; not serving a page at /", dir);
            return null;
        }
        return dir;
    }

    @Override
    public void addCorsMappings(CorsRegistry registry) {
        if (properties.corsOrigins().isEmpty()) {
            return;
        }
        String[] origins = properties.corsOrigins().stream().map(String::strip).filter(s -> !s.isEmpty())
                .toArray(String[]::new);
        registry.addMapping("/v1/**").allowedOrigins(origins).allowedMethods("GET", "POST", "OPTIONS")
                .allowedHeaders("Authorization", "Content-Type", "X-Request-Id").exposedHeaders(EXPOSED_HEADERS)
                .maxAge(3600);
        registry.addMapping("/api/**").allowedOrigins(origins).allowedMethods("GET", "POST", "DELETE", "OPTIONS")
                .allowedHeaders("Content-Type", "Last-Event-ID", "X-Request-Id").exposedHeaders(EXPOSED_HEADERS)
                .allowCredentials(true).maxAge(3600);
    }

    @Override
    public void addResourceHandlers(ResourceHandlerRegistry registry) {
        if (webDir != null) {
            log.info("serving the web page from {}", webDir);
            registry.addResourceHandler("/**").addResourceLocations(webDir.toUri().toString());
        }
    }

    @Override
    public void addViewControllers(ViewControllerRegistry registry) {
        if (webDir != null && Files.isRegularFile(webDir.resolve("index.html"))) {
            registry.addViewController("/").setViewName("forward:/index.html");
        }
        if (webDir != null && Files.isRegularFile(webDir.resolve("console/index.html"))) {
            // the operator console (web/console/): its relative links resolve under /console/
            registry.addRedirectViewController("/console", "/console/");
            registry.addViewController("/console/").setViewName("forward:/console/index.html");
        }
    }
}
