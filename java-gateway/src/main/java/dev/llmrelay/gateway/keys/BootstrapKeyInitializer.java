package dev.llmrelay.gateway.keys;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;

/** Creates GATEWAY_BOOTSTRAP_KEY at start (name "bootstrap") so a fresh run and cross-tier tests have a key. */
@Component
class BootstrapKeyInitializer implements ApplicationRunner {

    private static final Logger log = LoggerFactory.getLogger(BootstrapKeyInitializer.class);

    private final ApiKeyService keys;
    private final GatewayProperties properties;

    BootstrapKeyInitializer(ApiKeyService keys, GatewayProperties properties) {
        this.keys = keys;
        this.properties = properties;
    }

    @Override
    public void run(ApplicationArguments args) {
        String key = properties.bootstrapKey();
        if (key == null || key.isBlank()) {
            return;
        }
        if (keys.createIfAbsent("bootstrap", key.strip())) {
            log.info("created bootstrap API key (name=bootstrap)");
        }
    }
}
