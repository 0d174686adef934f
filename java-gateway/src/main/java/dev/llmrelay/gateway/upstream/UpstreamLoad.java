package dev.llmrelay.gateway.upstream;

import java.util.Optional;

/**
 * A replica's own account of its load, read from its {@code /metrics} (Prometheus text): requests
 * waiting for a batch slot, requests decoding, and KV cache use (0..1, NaN when not exported). The
 * model-service's gauges, vLLM's and llama.cpp's are understood, so a {@code vllm serve} replica or a
 * {@code llama-server --metrics} replica can join the pool as is (llama-server's deferred requests are the
 * ones waiting for a free slot; the KV ratio only where its version exports one).
 *
 * @param scrapedAtNanos {@link System#nanoTime()} of the scrape, so a value ages out when scrapes fail
 */
public record UpstreamLoad(int waiting, int running, double kvCacheUsage, long scrapedAtNanos) {

    private static final String[] WAITING = {"model_service_queue_depth", "vllm:num_requests_waiting",
        "llamacpp:requests_deferred"};
    private static final String[] RUNNING = {"model_service_running_batch_size", "vllm:num_requests_running",
        "llamacpp:requests_processing"};
    // vLLM renamed gpu_cache_usage_perc to kv_cache_usage_perc (0.10); read either
    private static final String[] KV_CACHE = {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
        "llamacpp:kv_cache_usage_ratio"};

    /**
     * The load in a {@code /metrics} page; empty when it exports no queue or batch gauge (another
     * server, an error page). Series of one name (vLLM labels them per model and engine) are summed;
     * the KV cache use is the fullest series.
     */
    static Optional<UpstreamLoad> parse(String text, long scrapedAtNanos) {
        double waiting = Double.NaN;
        double running = Double.NaN;
        double kvCache = Double.NaN;
        for (String raw : text.split("\n")) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            int nameEnd = nameEnd(line);
            String name = line.substring(0, nameEnd);
            double value = value(line, nameEnd);
            if (Double.isNaN(value)) {
                continue;
            }
            if (is(name, WAITING)) {
                waiting = (Double.isNaN(waiting) ? 0 : waiting) + value;
            } else if (is(name, RUNNING)) {
                running = (Double.isNaN(running) ? 0 : running) + value;
            } else if (is(name, KV_CACHE)) {
                kvCache = Double.isNaN(kvCache) ? value : Math.max(kvCache, value);
            }
        }
        if (Double.isNaN(waiting) && Double.isNaN(running)) {
            return Optional.empty();
        }
        return Optional.of(new UpstreamLoad(count(waiting), count(running), kvCache, scrapedAtNanos));
    }

    private static boolean is(String name, String[] names) {
        for (String candidate : names) {
            if (candidate.equals(name)) {
                return true;
            }
        }
        return false;
    }

    /** End of the metric name: its label set or the space before its value. */
    private static int nameEnd(String line) {
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c == '{' || c == ' ' || c == '\t') {
                return i;
            }
        }
        return line.length();
    }

    /** The sample value after the name and labels (a label value may hold spaces, braces and \"). */
    private static double value(String line, int nameEnd) {
        int i = nameEnd;
        if (i < line.length() && line.charAt(i) == '{') {
            boolean quoted = false;
            for (i++; i < line.length(); i++) {
                char c = line.charAt(i);
                if (quoted && c == '\\') {
                    i++;
                } else if (c == '"') {
                    quoted = !quoted;
                } else if (!quoted && c == '}') {
                    i++;
                    break;
                }
            }
        }
        String[] rest = line.substring(Math.min(i, line.length())).strip().split("\\s+");
        if (rest.length == 0 || rest[0].isEmpty()) {
            return Double.NaN;
        }
        try {
            return Double.parseDouble(rest[0]);
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }

    private static int count(double value) {
        if (Double.isNaN(value) || value <= 0) {
            return 0;
        }
        return value >= Integer.MAX_VALUE ? Integer.MAX_VALUE : (int) Math.round(value);
    }
}
