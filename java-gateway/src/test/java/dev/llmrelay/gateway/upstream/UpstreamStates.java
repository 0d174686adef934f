package dev.llmrelay.gateway.upstream;

/** Resets what a replica remembers between requests (busy marks), for the shared-context tests elsewhere. */
public final class UpstreamStates {

    private UpstreamStates() {
    }

    public static void reset(UpstreamPool pool) {
        for (Upstream upstream : pool.upstreams()) {
            upstream.breaker().reset();
            upstream.notBusy();
        }
    }
}
