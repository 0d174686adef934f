package dev.llmrelay.gateway.usage;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.SmartLifecycle;
import org.springframework.stereotype.Component;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;

/**
 * Writes usage rows off the request path: a stream's end queues its row, one writer thread inserts what
 * has queued as one JDBC batch. Before, every stream's end inserted its own row on the OkHttp thread that
 * relayed it, so a thousand streams ending together queued on the database. Nothing is lost on shutdown
 * (the writer drains the queue before the data source closes: it stops in a late lifecycle phase), and
 * readers of usage ({@link #flush}) see every row recorded before they asked.
 */
@Component
class UsageWriter implements SmartLifecycle {

    private static final Logger log = LoggerFactory.getLogger(UsageWriter.class);
    /** rows per batch at most */
    static final int BATCH = 500;

    private final UsageRepository repository;
    private final UsageRollups rollups;
    private final org.springframework.transaction.support.TransactionTemplate transactions;
    private final LinkedBlockingQueue<UsageRecord> queue = new LinkedBlockingQueue<>();
    /** held while a batch is written: flush() waits for the batch in flight as well as the queue */
    private final ReentrantLock writing = new ReentrantLock();
    /**
     * Rows given to {@link #write}, and rows written (or given up on), so that flush() also waits for a row the
     * writer thread has taken off the queue but not yet written: it polls outside the lock, and a flush in that
     * moment returned before the row was in (UsageRollupsTest's totals missed one row in a few runs).
     */
    private final java.util.concurrent.atomic.AtomicLong queued = new java.util.concurrent.atomic.AtomicLong();
    private long handled; // guarded by writing
    private final java.util.concurrent.locks.Condition handledMore = writing.newCondition();
    private volatile Thread writer;
    private volatile boolean running;

    UsageWriter(UsageRepository repository, UsageRollups rollups,
            org.springframework.transaction.support.TransactionTemplate transactions, MeterRegistry meters) {
        this.repository = repository;
        this.rollups = rollups;
        this.transactions = transactions;
        Gauge.builder("gateway.usage.rows.queued", queue, LinkedBlockingQueue::size)
                .description("usage rows recorded but not yet written").register(meters);
    }

    /** Queues the row; written within moments (synchronously when the writer is not running). */
    void write(UsageRecord record) {
        queued.incrementAndGet();
        queue.add(record);
        if (!running) {
            flush(); // before start-up or after shutdown: nobody else will write it
        }
    }

    /** Writes every row queued so far, in the caller's thread if the writer has not yet. */
    void flush() {
        long target = queued.get();
        writing.lock();
        try {
            List<UsageRecord> batch = new ArrayList<>();
            while (queue.drainTo(batch, BATCH) > 0) {
                insert(batch);
                batch.clear();
            }
            while (handled < target) { // a row the writer thread holds: it writes it under this lock
                if (!handledMore.await(5, TimeUnit.SECONDS)) {
                    log.warn("usage flush gave up waiting for {} rows in the writer's hands", target - handled);
                    return;
                }
                while (queue.drainTo(batch, BATCH) > 0) {
                    insert(batch);
                    batch.clear();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            writing.unlock();
        }
    }

    private void run() {
        List<UsageRecord> batch = new ArrayList<>();
        while (running) {
            try {
                UsageRecord first = queue.poll(200, TimeUnit.MILLISECONDS);
                if (first == null) {
                    continue;
                }
                writing.lock();
                try {
                    batch.add(first);
                    queue.drainTo(batch, BATCH - 1);
                    insert(batch);
                } finally {
                    batch.clear();
                    writing.unlock();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException e) {
                log.error("usage writer failed; it goes on", e);
            }
        }
    }

    /**
     * One batch and its rollup cells in one transaction (the rollups always total the rows); if it fails, row by
     * row, so one bad row costs only itself (and is logged with its id).
     */
    private void insert(List<UsageRecord> batch) {
        try {
            insertOrOneByOne(batch);
        } finally {
            handled += batch.size();
            handledMore.signalAll();
        }
    }

    private void insertOrOneByOne(List<UsageRecord> batch) {
        try {
            transactions.executeWithoutResult(tx -> {
                repository.insertAll(batch);
                rollups.add(batch);
            });
        } catch (RuntimeException batchFailed) {
            for (UsageRecord record : batch) {
                try {
                    transactions.executeWithoutResult(tx -> {
                        repository.insert(record);
                        rollups.add(List.of(record));
                    });
                } catch (RuntimeException e) {
                    // accounting must not break a relay that already happened; the log line keeps the facts
                    log.error("could not store usage row for request {}", record.requestId(), e);
                }
            }
        }
    }

    @Override
    public void start() {
        running = true;
        Thread thread = new Thread(this::run, "usage-writer");
        thread.setDaemon(true);
        writer = thread;
        thread.start();
    }

    @Override
    public void stop() {
        running = false;
        Thread thread = writer;
        if (thread != null) {
            try {
                thread.join(TimeUnit.SECONDS.toMillis(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        flush();
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    /** Stops after the web server (its streams' last rows) and before the data source goes away. */
    @Override
    public int getPhase() {
        return SmartLifecycle.DEFAULT_PHASE - 2048;
    }
}
