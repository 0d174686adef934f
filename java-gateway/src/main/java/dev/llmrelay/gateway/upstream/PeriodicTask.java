package dev.llmrelay.gateway.upstream;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.SmartLifecycle;

/**
 * Runs {@link #runOnce} on a thread of its own every interval while the application context runs; an
 * interval of zero or less turns it off. What the health prober, the load scraper and the policy poller share.
 */
public abstract class PeriodicTask implements SmartLifecycle {

    private static final Logger log = LoggerFactory.getLogger(PeriodicTask.class);

    private final String threadName;
    private final Duration interval;
    private final String offMessage;
    private ScheduledExecutorService scheduler;

    protected PeriodicTask(String threadName, Duration interval, String offMessage) {
        this.threadName = threadName;
        this.interval = interval;
        this.offMessage = offMessage;
    }

    /** One round; it must not throw (a throw would end the schedule). */
    protected abstract void runOnce();

    @Override
    public void start() {
        if (interval.isZero() || interval.isNegative()) {
            log.info(offMessage);
            return;
        }
        scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread thread = new Thread(r, threadName);
            thread.setDaemon(true);
            return thread;
        });
        scheduler.scheduleWithFixedDelay(this::runOnce, 0, interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public void stop() {
        if (scheduler != null) {
            scheduler.shutdownNow();
            scheduler = null;
        }
    }

    @Override
    public boolean isRunning() {
        return scheduler != null;
    }
}
