package dev.llmrelay.gateway.degrade;

import org.springframework.stereotype.Component;

import dev.llmrelay.gateway.policy.LiveSnapshot;
import dev.llmrelay.gateway.policy.PolicyVersions;

/**
 * The live {@link DegradePolicy}: stored in the database and published to every instance by the
 * shared {@link PolicyVersions} (an instance sees another's change within its poll interval).
 */
@Component
public class PolicySource {

    private final PolicyVersions versions;
    private final LiveSnapshot<DegradePolicy> snapshot;

    PolicySource(PolicyVersions versions, DegradeRepository repository) {
        this.versions = versions;
        this.snapshot = versions.register("degradation", repository::load);
    }

    /** The policy in force now (cheap: read on every request). */
    public DegradePolicy current() {
        return snapshot.get();
    }

    /** Runs {@code write} (changes to the stored policy) all or nothing, then publishes it everywhere. */
    public void change(Runnable write) {
        versions.change(() -> {
            write.run();
            return null;
        });
    }
}
