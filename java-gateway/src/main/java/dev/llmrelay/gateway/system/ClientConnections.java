package dev.llmrelay.gateway.system;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;

import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.valves.ValveBase;
import org.apache.coyote.ActionCode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/**
 * Notices a client that left while its request waits for an answer that has no bytes to send yet (a
 * non-streamed completion). A servlet container reports a departed client only when a write fails, and
 * a JSON answer cannot write anything before it is complete; so this probes the connection itself: a
 * non-blocking read on the request's socket, whose body has already been read, returns end-of-stream
 * once the client closed it. Tomcat-specific (the embedded server here); elsewhere {@link #watch} is a
 * no-op.
 */
@Component
public class ClientConnections implements WebServerFactoryCustomizer<TomcatServletWebServerFactory>,
        DisposableBean {

    /** Probe interval: a departed client is noticed within this much (one non-blocking read per probe). */
    static final Duration PROBE_INTERVAL = Duration.ofMillis(100);
    private static final String ATTRIBUTE = ClientConnections.class.getName() + ".coyoteRequest";
    private static final Logger log = LoggerFactory.getLogger(ClientConnections.class);

    private final ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread thread = new Thread(r, "client-connection-probe");
        thread.setDaemon(true);
        return thread;
    });

    @Override
    public void customize(TomcatServletWebServerFactory factory) {
        factory.addContextValves(new CoyoteRequestValve());
    }

    /**
     * Calls {@code onGone} once if the client of {@code request} closes its connection before the returned
     * watch is closed. Call it only after the request body has been read; close the watch before writing the
     * answer (closing waits for a probe in progress, so none touches the connection afterwards).
     */
    public Watch watch(HttpServletRequest request, Runnable onGone) {
        if (!(request.getAttribute(ATTRIBUTE) instanceof org.apache.coyote.Request coyote)) {
            return () -> { };
        }
        ProbeTask task = new ProbeTask(coyote, onGone);
        long millis = PROBE_INTERVAL.toMillis();
        task.future = scheduler.scheduleWithFixedDelay(task, millis, millis, TimeUnit.MILLISECONDS);
        return task::close;
    }

    @Override
    public void destroy() {
        scheduler.shutdownNow();
    }

    /** An open watch; {@link #close} ends it. */
    @FunctionalInterface
    public interface Watch extends AutoCloseable {
        @Override
        void close();
    }

    private static final class ProbeTask implements Runnable {
        private final org.apache.coyote.Request coyote;
        private final Runnable onGone;
        private volatile ScheduledFuture<?> future;
        private boolean closed;

        ProbeTask(org.apache.coyote.Request coyote, Runnable onGone) {
            this.coyote = coyote;
            this.onGone = onGone;
        }

        @Override
        public void run() {
            boolean gone;
            synchronized (this) {
                if (closed) {
                    return;
                }
                // With the body read, "available" can only be end-of-stream (Tomcat reports a failed
                // non-blocking read as 1 byte available) or bytes of a pipelined next request, which
                // HTTP clients do not send while they wait for an answer.
                coyote.action(ActionCode.AVAILABLE, Boolean.TRUE);
                gone = coyote.getAvailable() > 0;
                if (gone) {
                    closed = true;
                }
            }
            if (gone) {
                future.cancel(false);
                log.debug("client closed its connection while waiting for an answer");
                try {
                    onGone.run();
                } catch (RuntimeException e) {
                    log.warn("client-gone callback failed", e);
                }
            }
        }

        synchronized void close() {
            closed = true;
            ScheduledFuture<?> current = future;
            if (current != null) {
                current.cancel(false);
            }
        }
    }

    /** Puts Tomcat's own request object where {@link #watch} finds it. */
    private static final class CoyoteRequestValve extends ValveBase {
        CoyoteRequestValve() {
            super(true);
        }

        @Override
        public void invoke(Request request, Response response) throws IOException, ServletException {
            request.setAttribute(ATTRIBUTE, request.getCoyoteRequest());
            getNext().invoke(request, response);
        }
    }
}
