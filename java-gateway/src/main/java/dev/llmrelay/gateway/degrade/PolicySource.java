package dev.llmrelay.gateway.degrade;

/**
 * Where the live {@link DegradePolicy} comes from. Behind an interface so the database poll of
 * {@link StoredPolicySource} can give way to a shared live-reload component in one place.
 */
public interface PolicySource {

    /** The policy in force now (cheap: read on every request). */
    DegradePolicy current();

    /** The stored policy was just changed through this instance: read it again now. */
    void changed();
}
