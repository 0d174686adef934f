package dev.llmrelay.gateway.policy;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The current value of one live policy, built from the database by its loader and replaced (never
 * mutated) when {@link PolicyVersions} sees a new version. Readers call {@link #get()} on every use, so
 * a running stream picks up a change at its next chunk.
 *
 * @param <T> an immutable snapshot type
 */
public final class LiveSnapshot<T> {

    private static final Logger log = LoggerFactory.getLogger(LiveSnapshot.class);

    private final String name;
    private final Supplier<T> loader;
    private final AtomicReference<T> current;
    private final List<Consumer<T>> listeners = new CopyOnWriteArrayList<>();

    LiveSnapshot(String name, Supplier<T> loader) {
        this.name = name;
        this.loader = loader;
        this.current = new AtomicReference<>(loader.get());
    }

    public T get() {
        return current.get();
    }

    /** Called with each new snapshot after it was published (on the reloading thread). */
    public void onChange(Consumer<T> listener) {
        listeners.add(listener);
    }

    public String name() {
        return name;
    }

    /** Loads and publishes; false (the old snapshot stays) when the loader failed. */
    boolean reload() {
        T next;
        try {
            next = loader.get();
        } catch (RuntimeException e) {
            log.warn("policy '{}' could not be reloaded; keeping the previous one", name, e);
            return false;
        }
        current.set(next);
        for (Consumer<T> listener : listeners) {
            try {
                listener.accept(next);
            } catch (RuntimeException e) {
                log.warn("policy '{}': a change listener failed", name, e);
            }
        }
        return true;
    }
}
