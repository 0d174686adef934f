package dev.llmrelay.gateway.degrade;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.system.GatewayProperties;
import dev.llmrelay.gateway.upstream.PeriodicTask;

/**
 * The policy as stored in the database, read at start, after each change through this instance, and
 * every {@code gateway.degrade.reload-interval} (changes made through other instances). A failed read
 * keeps the last policy.
 */
@Component
class StoredPolicySource extends PeriodicTask implements PolicySource {

    private static final Logger log = LoggerFactory.getLogger(StoredPolicySource.class);

    private final DegradeRepository repository;
    private volatile DegradePolicy current = DegradePolicy.NONE;

    StoredPolicySource(DegradeRepository repository, GatewayProperties properties) {
        super("degrade-reload", properties.degrade().reloadInterval(),
                "degradation policy reload is off: changes through other instances apply after a restart");
        this.repository = repository;
        this.current = repository.load();
    }

    @Override
    public DegradePolicy current() {
        return current;
    }

    @Override
    public void changed() {
        current = repository.load();
    }

    @Override
    protected void runOnce() {
        try {
            DegradePolicy loaded = repository.load();
            if (!loaded.equals(current)) {
                log.info("degradation policy now {}", loaded);
            }
            current = loaded;
        } catch (RuntimeException e) {
            log.warn("could not read the degradation policy; keeping the last one: {}", e.toString());
        }
    }
}
