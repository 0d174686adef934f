package dev.llmrelay.gateway.policy;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;
import org.springframework.transaction.support.TransactionTemplate;

import dev.llmrelay.gateway.upstream.PeriodicTask;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * Live policies without a restart, on every instance: a change runs in one transaction with a bump of
 * the single {@code policy_version} row ({@link #change}); each instance polls that row every
 * {@code gateway.policy.poll-interval} and, when it moved, reloads every {@link LiveSnapshot} registered
 * here. The instance that made the change reloads before answering, so its own next request already
 * sees it. One mechanism for every feature (content filters, system prompts, admin switches).
 *
 * <pre>{@code
 * LiveSnapshot<Rules> rules = versions.register("rules", repository::loadRules);
 * versions.change(() -> repository.insertRule(...));   // all-or-nothing, then live everywhere
 * rules.get();                                          // on every use
 * }</pre>
 */
@Component
public class PolicyVersions extends PeriodicTask {

    private static final Logger log = LoggerFactory.getLogger(PolicyVersions.class);

    private final JdbcClient jdbc;
    private final TransactionTemplate transactions;
    private final List<LiveSnapshot<?>> snapshots = new CopyOnWriteArrayList<>();
    private final List<Runnable> changeListeners = new CopyOnWriteArrayList<>();
    private volatile long loadedVersion;

    PolicyVersions(JdbcClient jdbc, TransactionTemplate transactions, PolicyProperties properties,
            MeterRegistry meters) {
        super("policy-versions", properties.pollInterval(), "policy polling is off: changes apply where made");
        this.jdbc = jdbc;
        this.transactions = transactions;
        this.loadedVersion = readVersion();
        Gauge.builder("gateway.policy.version", this, PolicyVersions::loadedVersion)
                .description("policy version this instance has loaded").register(meters);
    }

    /** A snapshot loaded now and again after every version change. */
    public <T> LiveSnapshot<T> register(String name, Supplier<T> loader) {
        LiveSnapshot<T> snapshot = new LiveSnapshot<>(name, loader);
        snapshots.add(snapshot);
        return snapshot;
    }

    /**
     * Runs {@code work} and bumps the version in one transaction (a throw rolls both back: nothing is
     * half-applied), then reloads here at once. Other instances follow at their next poll.
     */
    public <T> T change(Supplier<T> work) {
        T result = transactions.execute(tx -> {
            T value = work.get();
            jdbc.sql("UPDATE policy_version SET version = version + 1 WHERE id = 1").update();
            return value;
        });
        refresh();
        for (Runnable listener : changeListeners) {
            listener.run();
        }
        return result;
    }

    /** Called after each change made here has committed (the Redis nudge tells other instances). */
    void onLocalChange(Runnable listener) {
        changeListeners.add(listener);
    }

    /** The version whose policies this instance serves. */
    public long loadedVersion() {
        return loadedVersion;
    }

    @Override
    protected void runOnce() {
        try {
            refresh();
        } catch (RuntimeException e) {
            log.warn("policy version poll failed: {}", e.toString());
        }
    }

    /** Reloads every snapshot when the stored version moved; a failed load retries at the next poll. */
    public synchronized void refresh() {
        long stored = readVersion();
        if (stored == loadedVersion) {
            return;
        }
        boolean all = true;
        for (LiveSnapshot<?> snapshot : snapshots) {
            all &= snapshot.reload();
        }
        if (all) {
            log.debug("policies reloaded at version {}", stored);
            loadedVersion = stored;
        }
    }

    private long readVersion() {
        return jdbc.sql("SELECT version FROM policy_version WHERE id = 1").query(Long.class).single();
    }
}
