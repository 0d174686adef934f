package dev.llmrelay.gateway.support;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A real {@code redis-server} (Debian package; {@code make test} installs it) on a free port, started
 * before a test class and stopped after it. Register with {@code @RegisterExtension static}. Tests may
 * {@link #stop()} and {@link #start()} it again on the same port to simulate an outage.
 */
public final class RedisServer implements BeforeAllCallback, AfterAllCallback {

    private static final Duration READY_BOUND = Duration.ofSeconds(15);

    private int port;
    private Process process;

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        start();
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        stop();
    }

    public String url() {
        return "redis://127.0.0.1:" + port;
    }

    /** Starts the server (empty, no persistence) and waits until it answers PING. */
    public void start() throws IOException, InterruptedException {
        process = new ProcessBuilder("redis-server", "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        long deadline = System.nanoTime() + READY_BOUND.toNanos();
        while (!answersPing()) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                throw new IllegalStateException("redis-server did not start on port " + port
                        + " (is the redis-server package installed? `make test` installs it)");
            }
            Thread.sleep(20);
        }
    }

    /** Kills the server at once, as a crash or a network cut would look to clients. */
    public void stop() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** Removes every key, so each test starts from fresh limits. */
    public void flushAll() throws IOException {
        String reply = command("*1\r\n$8\r\nFLUSHALL\r\n");
        if (!reply.startsWith("+OK")) {
            throw new IllegalStateException("FLUSHALL answered " + reply);
        }
    }

    private boolean answersPing() {
        try {
            return command("*1\r\n$4\r\nPING\r\n").startsWith("+PONG");
        } catch (IOException e) {
            return false;
        }
    }

    private String command(String resp) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            socket.setSoTimeout(2000);
            OutputStream out = socket.getOutputStream();
            out.write(resp.getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            byte[] buffer = new byte[64];
            int read = in.read(buffer);
            return read <= 0 ? "" : new String(buffer, 0, read, StandardCharsets.US_ASCII);
        }
    }
}
